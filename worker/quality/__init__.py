"""Data-quality expectations: declared as data (`expectations.yaml`), evaluated in the
micro-batch's one aggregate (`checks`), kept per micro-batch (`metrics_table`) and turned
into `quality.alert` / `quality.recovered` events (`alerts`)."""
