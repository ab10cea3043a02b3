"""The dashboard as a whole: its process never loads TensorFlow, whatever page it serves."""

import subprocess
import sys
import textwrap
from pathlib import Path

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def test_the_dashboard_process_never_imports_tensorflow(sqlite_url, tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        os.environ.update(UNROLL_DB_URL={sqlite_url!r}, UNROLL_WORKER="off")
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({APP!r}, default_timeout=30).run()
        for page in ("launch", "compare", "run"):
            at.switch_page(f"app_pages/{{page}}.py").run()
            assert not at.exception, at.exception
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
        print("HEAVY", heavy)
        sys.exit(1 if heavy else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY []" in result.stdout
