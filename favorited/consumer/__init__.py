"""The webhook consumer: applies queued LiveKit events exactly once, and runs the periodic jobs."""
