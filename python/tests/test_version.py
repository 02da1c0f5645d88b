"""Another torch than the one the package is built against: a clear ImportError, no crash."""

import subprocess
import sys
import textwrap


def test_a_torch_version_mismatch_says_which_torch_is_needed(tmp_path):
    # A stand-in `torch` module of another version, found before the real one.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text('__version__ = "2.9.1"\n')
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        try:
            import sae_dsl
        except ImportError as e:
            print("IMPORT ERROR:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "IMPORT ERROR: sae_dsl is built against torch 2.11.*, but torch 2.9.1 is installed" in out.stdout
