"""The webhook dispatcher: delivers the outbox as Standard Webhooks (``stanceline dispatcher``,
and a part of ``stanceline up``)."""
