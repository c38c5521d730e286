"""Development tooling: the local platform (devstack), deploys to the emulator, local runs.

Installed by the root project (`pip install -e .[dev]`), so its modules import as
`from infra import init_db`; each is also a script (`.venv/bin/python infra/init_db.py`).
"""
