"""The projector: stream entries → contract → one Postgres transaction → ack."""
