"""The results root: one Parquet row per request, under ``<root>/<run_id>/``.

:mod:`.parts` holds the schema, the part files, the manifest, the readers and
resume; :mod:`.journal` the crash-safe row journal a run writes through.
"""
