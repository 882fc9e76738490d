"""The gold business tables, recomputed from silver by event-time window."""
