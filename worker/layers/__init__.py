"""The medallion's layers, one module each: `bronze` (every record as received),
`silver` (typed, enriched, deduplicated transactions), `quarantine` (what silver refused,
plus the DLQ copy). `worker.medallion` runs them in order for one micro-batch."""
