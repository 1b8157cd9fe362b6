"""Production helpers: MySQL/MariaDB instance storage, concurrency pools, Kubernetes tags.

Nothing here is imported by the asset graph at load time except the tag constants in
`k8s_tags`; the MySQL helpers are called from the CLI (`crypto-assets instance ...`).
"""
