"""The layers of the house, checked by import-linter (contracts in pyproject.toml): the dashboard
never imports rnncore or TensorFlow, rnncore.nn never imports db or the dashboard, db imports
neither, and neither db nor the dashboard imports Ray. tests/dashboard/test_app.py keeps the
end-to-end proof (a real dashboard process)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept():
    command = shutil.which("lint-imports")
    assert command, "import-linter is missing: pip install -r requirements-dev.txt"
    result = subprocess.run([command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout
