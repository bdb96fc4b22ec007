"""Section 7: the two learn_* functions in quick mode, and the command line."""
import keras
import numpy as np
import pytest

import sol5
from restoration import _training, cli
import sol5_utils


@pytest.fixture(autouse=True)
def course_folders(no_course_data, write_images):
    """Small synthetic course datasets beside sol5_utils, so quick training takes seconds."""
    shapes = [(100 + 3 * i, 110 + 2 * i) for i in range(8)]  # 3x the largest preset patch
    write_images(no_course_data / "image_dataset" / "train", shapes, seed=1, suffix=".jpg")
    write_images(no_course_data / "text_dataset" / "train", shapes, seed=2)
    return no_course_data


def conv_filters(model):
    return [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def trained_on(monkeypatch):
    """Record what train_model is given while still running it."""
    seen = []
    real = sol5.train_model

    def recording(model, images, corruption_func, *args, **kwargs):
        before = [w.copy() for w in model.get_weights()]
        history = real(model, images, corruption_func, *args, **kwargs)
        seen.append(dict(images=images, corruption=corruption_func, schedule=args,
                         moved=any(not np.allclose(a, b) for a, b in zip(before, model.get_weights())),
                         epochs=len(history.history["loss"])))
        return history
    monkeypatch.setattr(sol5, "train_model", recording)
    return seen


def test_quick_denoising_model(monkeypatch):
    seen = trained_on(monkeypatch)
    model = sol5.learn_denoising_model(num_res_blocks=2, quick_mode=True)
    assert model.input_shape == (None, 24, 24, 1)
    assert conv_filters(model) == [48] * 5 + [1]
    (run,) = seen
    assert run["images"] == sol5_utils.images_for_denoising()
    assert all("image_dataset" in path for path in run["images"])  # the course folder's images
    assert run["corruption"] is sol5.denoising_corruption
    assert tuple(run["schedule"]) == tuple(sol5.QUICK_SCHEDULE) and run["epochs"] == 2
    assert run["moved"]  # the weights were really trained
    image = np.random.uniform(0, 1, (40, 50))
    assert sol5.restore_image(image, model).shape == (40, 50)


def test_quick_deblurring_model(monkeypatch):
    seen = trained_on(monkeypatch)
    model = sol5.learn_deblurring_model(quick_mode=True)
    assert model.input_shape == (None, 16, 16, 1)
    assert conv_filters(model) == [32] * 11 + [1]
    (run,) = seen
    assert run["images"] == sol5_utils.images_for_deblurring()
    assert run["corruption"] is sol5.deblurring_corruption
    assert tuple(run["schedule"]) == tuple(sol5.QUICK_SCHEDULE) and run["moved"]
    page = np.random.uniform(0, 1, (30, 40))
    assert sol5.restore_image(page, model).shape == (30, 40)


@pytest.mark.parametrize("quick, schedule", [(True, sol5.QUICK_SCHEDULE),
                                             (False, sol5.DENOISE_SCHEDULE)])
def test_quick_mode_only_changes_the_numbers(monkeypatch, quick, schedule):
    calls = []
    monkeypatch.setattr(sol5, "train_model", lambda *args, **kwargs: calls.append(args))
    sol5.learn_denoising_model(num_res_blocks=1, quick_mode=quick)
    (model, images, corruption, *numbers), = calls
    assert tuple(numbers) == tuple(schedule)
    assert model.input_shape == (None, 24, 24, 1)
    noisy = corruption(np.full((30, 30), 0.5))
    assert noisy.shape == (30, 30) and 0 < (noisy - 0.5).std() < 0.25


def test_full_deblurring_schedule(monkeypatch):
    calls = []
    monkeypatch.setattr(sol5, "train_model", lambda *args, **kwargs: calls.append(args))
    sol5.learn_deblurring_model(num_res_blocks=1)
    (model, images, corruption, *numbers), = calls
    assert tuple(numbers) == (100, 100, 10, 1000)
    dot = np.zeros((21, 21))
    dot[10, 10] = 1
    assert np.count_nonzero(corruption(dot)) == 7  # a 7-pixel line


def test_command_line_trains_and_restores(tmp_path, monkeypatch):
    import imageio.v3 as iio
    monkeypatch.chdir(tmp_path)
    outputs = tmp_path / "outputs"  # conftest points SOL5_OUTPUTS here
    cli.main(["train", "--quick", "--tasks", "denoise", "--num-res-blocks", "1"])
    assert (outputs / "denoise.keras").is_file()
    assert (outputs / "restoration_examples.png").is_file()
    iio.imwrite(tmp_path / "in.png", np.random.randint(0, 256, (33, 45, 3), np.uint8))
    cli.main(["restore", "--task", "denoise", "in.png", "out.png"])
    out = iio.imread(tmp_path / "out.png")
    assert out.shape == (33, 45, 3) and out.dtype == np.uint8  # colour stays colour


def test_command_line_restore_without_model_explains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="train one first"):
        cli.main(["restore", "--task", "deblur", "in.png", "out.png"])


def test_strong_preset_quick_mode_builds_the_bigger_network():
    model = sol5.learn_deblurring_model(quick_mode=True, preset="strong")
    recipe = sol5.PRESETS["deblur"]["strong"]
    assert model.input_shape == (None, *recipe.patch, 1)
    assert conv_filters(model) == [recipe.channels] * (1 + 2 * recipe.num_res_blocks) + [1]
    assert model.optimizer.beta_2 == pytest.approx(0.9)


def test_strong_preset_uses_a_decaying_step_size(monkeypatch):
    seen = {}
    monkeypatch.setattr(sol5, "train_model",
                        lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs))
    sol5.learn_denoising_model(preset="strong")
    recipe = sol5.PRESETS["denoise"]["strong"]
    assert tuple(seen["args"][3:]) == tuple(recipe.schedule)
    schedule = seen["kwargs"]["learning_rate"]
    total = recipe.schedule.steps_per_epoch * recipe.schedule.num_epochs
    assert float(schedule(0)) == pytest.approx(recipe.learning_rate[0])
    assert float(schedule(total)) == pytest.approx(recipe.learning_rate[1], rel=1e-3)


def test_extended_deblur_preset_is_the_assignment_recipe_with_four_times_the_steps(monkeypatch):
    seen = {}
    monkeypatch.setattr(sol5, "train_model",
                        lambda model, *args, **kwargs: seen.update(model=model, args=args, kwargs=kwargs))
    sol5.learn_deblurring_model(preset="extended")
    assert seen["model"].input_shape == (None, *sol5.DEBLUR_PATCH, 1)
    assert conv_filters(seen["model"]) == [sol5.DEBLUR_CHANNELS] * 11 + [1]  # 5 blocks
    schedule = sol5.Schedule(*seen["args"][2:])
    assert schedule.batch_size == sol5.DEBLUR_SCHEDULE.batch_size
    assert schedule.steps_per_epoch * schedule.num_epochs == 4 * (
        sol5.DEBLUR_SCHEDULE.steps_per_epoch * sol5.DEBLUR_SCHEDULE.num_epochs)
    assert seen["kwargs"]["learning_rate"] == pytest.approx(0.001)  # Adam's default, as assigned
    with pytest.raises(ValueError, match="unknown preset"):  # deblurring only
        sol5.learn_denoising_model(quick_mode=True, preset="extended")


def test_preset_errors():
    with pytest.raises(ValueError, match="unknown preset"):
        sol5.learn_denoising_model(quick_mode=True, preset="huge")
    with pytest.raises(ValueError, match="num_res_blocks"):
        sol5.learn_denoising_model(num_res_blocks=3, quick_mode=True, preset="strong")


def test_assignment_learning_rate_is_adams_default(small_images):
    model = sol5.build_nn_model(8, 8, 2, 0)
    sol5.train_model(model, small_images, lambda im: im, 2, 1, 1, 2)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)


def test_time_budget_stops_training_and_decays_the_step_size(small_images, capsys):
    model = sol5.build_nn_model(8, 8, 2, 0)
    budget = _training.TimeBudget(0.0, 1e-3, 1e-5)  # already spent: one step, then stop
    history = sol5.train_model(model, small_images, lambda im: im, 2, 5, 4, 2, learning_rate=1e-3,
                               callbacks=[budget])
    assert len(history.history["loss"]) == 1
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)
    # the log says the one epoch was cut after its first step (its bar reads 5/5 all the same)
    lines = capsys.readouterr().out.splitlines()
    assert "sol5: time budget spent after 1 of 5 steps of epoch 1" in lines


def test_time_budget_decays_over_the_epochs_when_they_end_before_the_budget(small_images):
    model = sol5.build_nn_model(8, 8, 2, 0)
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: rates.append(float(model.optimizer.learning_rate)))
    budget = _training.TimeBudget(3600.0, 1e-3, 1e-5)  # an hour: the 3 epochs end long before
    history = sol5.train_model(model, small_images, lambda im: im, 2, 1, 3, 2, learning_rate=1e-3,
                               callbacks=[budget, record])
    assert len(history.history["loss"]) == 3
    assert rates[0] == pytest.approx(1e-3)
    assert rates[1] == pytest.approx(0.5 * (1e-3 + 1e-5), rel=1e-3)  # half-way along the cosine
    assert rates[2] == pytest.approx(1e-5)  # the last epoch runs at the final step size


@pytest.mark.parametrize("task", ["denoise", "deblur", "superres"])
def test_shipped_weights_are_the_long_preset_network(task):
    import pathlib
    name = "superres-x2" if task == "superres" else task
    model = keras.models.load_model(pathlib.Path(sol5.__file__).parent / "models" / f"{name}_long.keras",
                                    compile=False)
    recipe = sol5.PRESETS[task]["long"]
    assert conv_filters(model) == [recipe.channels] * (1 + 2 * recipe.num_res_blocks) + [1]
    assert not model.compiled  # saved without optimizer state


def test_shipped_denoiser_removes_noise():
    import pathlib
    import skimage.data
    model = keras.models.load_model(pathlib.Path(sol5.__file__).parent / "models" / "denoise_long.keras",
                                    compile=False)
    clean = skimage.data.camera()[100:228, 100:228] / 255.0
    noisy = sol5.add_gaussian_noise(clean, 0.1, 0.1)
    error_before = np.mean((noisy - clean) ** 2)
    assert np.mean((sol5.restore_image(noisy, model) - clean) ** 2) < error_before / 4  # > 6 dB


def test_training_can_continue_from_saved_weights(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(sol5, "train_model", lambda model, *args, **kwargs: seen.update(
        weights=[w.copy() for w in model.get_weights()], rate=kwargs["learning_rate"]))
    start = sol5.build_nn_model(16, 16, 32, 1)
    start.save(tmp_path / "start.keras")
    sol5.learn_deblurring_model(num_res_blocks=1, quick_mode=True, init_from=tmp_path / "start.keras")
    for got, expected in zip(seen["weights"], start.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert float(seen["rate"](0)) == pytest.approx(sol5.CONTINUE_RATE)  # a decay from there
