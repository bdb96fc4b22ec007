"""Training recipes: the schedule type, and stronger presets beside the assignment's recipe.

A recipe names the network's size, the patch size, the schedule and Adam's step size.  The
assignment's own recipes are spelled out in ``sol5`` section 7; the presets here are opt-in
(``learn_denoising_model(preset="strong")``, ``python sol5.py train --preset strong``).
"""

import collections


#: A training schedule: batch size, steps per epoch, epochs, validation samples.
Schedule = collections.namedtuple("Schedule", "batch_size steps_per_epoch num_epochs num_valid_samples")

#: A complete training recipe: network size, patch size, schedule and Adam's step size
#: (a float, or ``(initial, final)`` for a cosine decay over the whole run).
Recipe = collections.namedtuple("Recipe", "patch channels num_res_blocks schedule learning_rate")
#: Stronger recipes than the assignment's, within figure 1's design (the same layer kinds and
#: global skip), by task.  ``extended`` (deblurring): the assignment's network, patches, batch and
#: step size, trained 4 times as many steps.  ``strong``: a wider, deeper network on larger
#: patches for a CPU, with a cosine step size.  ``long``: deeper and much longer, for a GPU; the
#: shipped weights ``models/TASK_long.keras`` come from it (docs/presets.md gives their
#: provenance).  ``denoise-colour`` is the colour network (``sol5.build_color_nn_model``); its
#: ``long`` preset has the gray ``long`` body, so it can start from the gray weights.
PRESETS = {
    "denoise": {"strong": Recipe((40, 40), 64, 8, Schedule(32, 1000, 6, 1024), (1e-3, 2e-5)),
                "long": Recipe((48, 48), 64, 12, Schedule(64, 250, 120, 512), (1e-3, 1e-5))},
    "deblur": {"extended": Recipe((16, 16), 32, 5, Schedule(100, 100, 40, 1000), 1e-3),
               "strong": Recipe((32, 32), 64, 8, Schedule(32, 1000, 8, 1024), (1e-3, 2e-5)),
               "long": Recipe((32, 32), 64, 12, Schedule(64, 250, 120, 512), (1e-3, 1e-5))},
    "denoise-colour": {"long": Recipe((32, 32), 64, 12, Schedule(32, 250, 48, 512), (1e-3, 1e-5))},
    "superres": {"strong": Recipe((40, 40), 64, 8, Schedule(32, 1000, 6, 1024), (1e-3, 2e-5)),
                 "long": Recipe((32, 32), 64, 12, Schedule(64, 250, 120, 512), (1e-3, 1e-5))},
}


def learning_rate(recipe):
    """Adam's step size for ``recipe``: its float, or a cosine decay for an ``(initial, final)`` pair."""
    if not isinstance(recipe.learning_rate, tuple):
        return recipe.learning_rate
    import keras
    initial, final = recipe.learning_rate
    steps = recipe.schedule.steps_per_epoch * recipe.schedule.num_epochs
    return keras.optimizers.schedules.CosineDecay(initial, decay_steps=steps, alpha=final / initial)
