import random

import numpy as np
import pytest
import torch

from cvkit import config


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("CVKIT_SMOKE", "CVKIT_SCALE", "CVKIT_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_scale_defaults_to_the_hardware(clean_env):
    assert config.scale() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_smoke_wins_over_scale(clean_env):
    clean_env.setenv("CVKIT_SCALE", "gpu")
    clean_env.setenv("CVKIT_SMOKE", "1")
    assert config.scale() == "smoke"


@pytest.mark.parametrize("value", ["", "0"])
def test_smoke_off_values(clean_env, value):
    clean_env.setenv("CVKIT_SMOKE", value)
    clean_env.setenv("CVKIT_SCALE", "cpu")
    assert config.scale() == "cpu"


@pytest.mark.parametrize("value", ["smoke", "cpu", "gpu", " GPU "])
def test_scale_from_environment(clean_env, value):
    clean_env.setenv("CVKIT_SCALE", value)
    assert config.scale() == value.strip().lower()


def test_bad_scale_names_the_variable(clean_env):
    clean_env.setenv("CVKIT_SCALE", "huge")
    with pytest.raises(ValueError, match="CVKIT_SCALE"):
        config.scale()


def test_by_scale_picks_the_current_value(clean_env):
    clean_env.setenv("CVKIT_SCALE", "cpu")
    assert config.by_scale(smoke=1, cpu=2, gpu=3) == 2
    clean_env.setenv("CVKIT_SMOKE", "1")
    assert config.by_scale(smoke=1, cpu=2, gpu=3) == 1


def test_device(clean_env):
    assert config.device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clean_env.setenv("CVKIT_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    clean_env.setenv("CVKIT_DEVICE", "abacus")
    with pytest.raises(ValueError, match="CVKIT_DEVICE"):
        config.device()


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(2).tolist()

    config.seed_everything(3)
    first = draw()
    config.seed_everything(3)
    assert draw() == first
    config.seed_everything(4)
    assert draw() != first


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_seed_must_be_a_non_negative_int(seed):
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(seed)


def test_describe_mentions_scale_and_device(clean_env):
    clean_env.setenv("CVKIT_SCALE", "cpu")
    line = config.describe()
    assert "scale=cpu" in line and "device=" in line and torch.__version__ in line
