"""tqdm.auto's "IProgress not found" warning stays out of notebooks that use cfx."""

import subprocess
import sys

# a Jupyter kernel as tqdm.autonotebook detects one, without ipywidgets (as in CI)
SCRIPT = """
import sys, types, warnings
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
ipython = types.ModuleType("IPython")
ipython.get_ipython = lambda: type("ZMQInteractiveShell", (), {})()
sys.modules["IPython"] = ipython
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    FIRST
    import tqdm.auto  # what huggingface_hub does when cfx loads a hub model
print(sum("IProgress not found" in str(w.message) for w in caught))
"""


def _warnings(first: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("FIRST", first)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_importing_cfx_keeps_the_iprogress_warning_out_of_a_kernel():
    """A notebook whose first progress bar came from huggingface_hub (loading a hub model
    or the diffusers VAE through cfx) printed the warning: tqdm.auto was first imported there,
    outside cfx.progress's filter."""
    assert _warnings("pass") == 1  # the fake kernel does trigger it
    assert _warnings("import cfx") == 0
