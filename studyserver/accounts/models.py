"""No tables: the roles are Django groups (see roles.py).

The module exists so that Django sends this app its post_migrate signal (it skips apps without
a models module), which keeps the groups in sync with roles.py after every migrate.
"""
