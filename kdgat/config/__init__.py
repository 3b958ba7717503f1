"""The functions over the schema in configs.py: resolving and checking a config, preset names, the
config.yaml codec and the migrations of older layouts. Imports no torch."""
