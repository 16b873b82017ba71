"""Config files: YAML with line numbers → validated pydantic models (:mod:`.spec`).

:mod:`.yamlsource` keeps each key's line so that an error names file, key and
line; :mod:`.spec` holds the run, provider and suite models and
:func:`~harness.config.spec.load_config`, which refuses literal secrets.
"""
