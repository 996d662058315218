"""The shipped models load and run with no network: no download is ever attempted."""

import subprocess
import sys
import textwrap

from tests._offline import REFUSE_NETWORK

PROBE = REFUSE_NETWORK + textwrap.dedent(
    """
    import huggingface_hub.file_download as fd
    def no_download(*a, **k):
        attempts.append(("hf_hub_download", a, k))
        raise RuntimeError("download attempted")
    fd.hf_hub_download = no_download

    from affect import Analyzer
    result = Analyzer().analyze(text="Thanks, that fixed it!")
    assert result.present, result
    print("attempts:", len(attempts))
    sys.exit(1 if attempts else 0)
    """
)


def test_default_models_load_and_run_without_any_network_attempt():
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}  # not relying on offline flags
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "attempts: 0" in out.stdout
