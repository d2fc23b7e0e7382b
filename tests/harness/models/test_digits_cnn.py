"""The built-in digits CNN is one model, whatever the process did before training it: its
initial weights come from the recipe's seed, not from the process's RNG state."""

import torch

from harness.models.digits_cnn import initial_model


def test_the_initial_weights_come_from_the_recipe_not_the_process_rng():
    torch.manual_seed(1)
    first = initial_model().state_dict()
    torch.manual_seed(2)
    torch.rand(100)  # some other code drew from the global RNG meanwhile
    state = torch.get_rng_state()
    second = initial_model().state_dict()
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
