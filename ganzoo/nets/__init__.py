"""Networks, built from the `arch` config group (build.build_nets). Kept import-light:
config.py reads nets/schemas.py without importing torch."""
