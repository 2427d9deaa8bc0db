"""Live updates for the Watch RPCs.

The durable event log (participant_events) and the livestreams table are the source of truth;
PostgreSQL LISTEN/NOTIFY only wakes us. Each API process keeps one LISTEN connection, and one feed
per watched livestream that reads each change once and hands it to every local watcher, each
through a bounded buffer.
"""
