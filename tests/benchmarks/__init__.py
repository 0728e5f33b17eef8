"""The benchmark: stanceline's real components against baselines measured in the same run.

Run it from the repository root (see ``run.py``):

    .venv/bin/python tests/benchmarks/run.py [--full] [--events N] [--json PATH]

``test_bench_smoke.py`` runs it end to end with tiny sizes and checks the JSON it writes;
it asserts nothing about speed.
"""
