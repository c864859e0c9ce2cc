"""The FLOP count (msf.flops) against torch's FLOP counter and against a count written out by hand."""
from helpers import OFFICIAL, official_config
from msf.config import Config
from msf.flops import flops_per_window


def test_flops_formula_matches_torch_flop_counter(torch):
    from torch.utils.flop_counter import FlopCounterMode
    from torch_model import random_model
    for name, dims in OFFICIAL.items():
        for reduce in [(4, 1), (1, 1), (4, 8)]:
            model = random_model(*dims, *reduce)
            config = official_config(*dims, *reduce)
            with FlopCounterMode(display=False) as counter:
                model.forward_keyframes(torch.zeros(1, config.n_keyframes, config.P, dtype=torch.float64))
            assert counter.get_total_flops() == flops_per_window(config), (name, reduce)


def test_flops_of_h36m_by_hand():
    # An independent oracle on purpose: the count written out by hand here, not msf.flops's formula.
    c = Config(K=10, Q=10, P=51, C=64, L=4, ffn_hidden=128, d_t=25, d_c=64, se_t=25, se_c=16, reweight_hidden=25)
    T = 101
    token = T * 64 * 25 * 3 + 2 * T * 25  # d_t = 25 < T: dense, value and A V all count
    channel = 64 * T * 64 * 2 + 2 * 64 * 16  # d_c = C: no value projection
    block = token + channel + 3 * T * 25 + T * 64 * 64 + 2 * T * 64 * 128
    assert flops_per_window(c) == 2 * (T * 11 * 51 + 2 * T * 51 * 64 + 4 * block) == 28_594_738
