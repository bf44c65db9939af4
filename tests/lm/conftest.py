import pytest


@pytest.fixture(scope="session")
def lm_ctx(tmp_path_factory):
    """The smoke profile's context: a tiny GPT-2-shaped teacher trained on synthetic sentences (seconds)."""
    import os

    from kdlab import lm_lab

    os.environ.pop("KDLAB_LM_OVERRIDES", None)
    cfg = lm_lab.setup("smoke", runs_dir=str(tmp_path_factory.mktemp("lmruns")))
    return lm_lab.prepare(cfg)
