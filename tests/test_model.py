"""Sections 4-6: the network, training and whole-image restoration."""
import keras
import numpy as np
import pytest

import sol5

ALLOWED = {"InputLayer", "Conv2D", "Activation", "Add"}


@pytest.mark.parametrize("blocks", [0, 1, 3])
def test_network_layers_follow_figure_1(blocks):
    model = sol5.build_nn_model(24, 20, 16, blocks)
    assert model.input_shape == (None, 24, 20, 1)
    assert model.output_shape == (None, 24, 20, 1)
    assert {type(layer).__name__ for layer in model.layers} <= ALLOWED
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 2 + 2 * blocks
    assert [c.filters for c in convs] == [16] * (1 + 2 * blocks) + [1]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == blocks + 1  # one per block plus the global skip
    assert not isinstance(model, keras.Sequential)


def test_network_output_is_input_plus_correction():
    model = sol5.build_nn_model(8, 8, 4, 1)
    last_conv = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    last_conv.set_weights([np.zeros_like(w) for w in last_conv.get_weights()])
    x = np.random.uniform(-0.5, 0.5, (2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), x, atol=1e-6)


def test_resblock_adds_its_input_then_relu():
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, sol5.resblock(inputs, 3))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 2 and all(c.filters == 3 for c in convs)
    convs[1].set_weights([np.zeros_like(w) for w in convs[1].get_weights()])
    x = np.random.normal(size=(1, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), np.maximum(x, 0), atol=1e-6)


def test_build_does_not_compile():
    assert not sol5.build_nn_model(16, 16, 8, 2).compiled


def test_bad_network_sizes_are_refused():
    with pytest.raises(ValueError, match="num_channels"):
        sol5.build_nn_model(16, 16, 0, 2)
    with pytest.raises(ValueError, match="num_res_blocks"):
        sol5.build_nn_model(16, 16, 8, -1)


def test_train_model_compiles_with_mse_and_adam_beta2(small_images):
    model = sol5.build_nn_model(16, 16, 4, 1)
    history = sol5.train_model(model, small_images, lambda im: sol5.add_gaussian_noise(im, 0, 0.2),
                               4, 2, 1, 8)
    assert model.compiled
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.beta_2 == pytest.approx(0.9)
    assert model.loss in ("mean_squared_error", "mse") or "mean_squared_error" in str(model.loss)
    assert len(history.history["val_loss"]) == 1


def test_train_model_splits_80_20_and_uses_the_model_size(small_images, monkeypatch):
    seen = []
    real = sol5.load_dataset

    def recording(filenames, batch_size, corruption_func, crop_size):
        seen.append((list(filenames), batch_size, tuple(crop_size)))
        return real(filenames, batch_size, corruption_func, crop_size)
    monkeypatch.setattr(sol5, "load_dataset", recording)
    model = sol5.build_nn_model(12, 10, 4, 0)
    sol5.train_model(model, small_images, lambda im: im, 3, 1, 1, 5)
    (train, b1, c1), (valid, b2, c2) = seen
    assert train == small_images[:8] and valid == small_images[8:]
    assert b1 == b2 == 3 and c1 == c2 == (12, 10)


@pytest.mark.parametrize("n, n_train", [(2, 1), (5, 4), (10, 8), (11, 8), (101, 80)])
def test_split_keeps_both_parts_non_empty(n, n_train):
    train, valid = sol5.split_train_valid(list(range(n)))
    assert len(train) == n_train and train + valid == list(range(n))


def test_split_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        sol5.split_train_valid(["only.png"])


@pytest.mark.parametrize("shape", [(24, 24), (37, 51), (100, 31), (5, 7)])
def test_restore_keeps_shape_and_range(shape):
    model = sol5.build_nn_model(24, 24, 8, 1)
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    kernel, bias = last.get_weights()
    last.set_weights([kernel * 20, bias])  # a network whose raw output leaves [0, 1]
    image = np.random.uniform(0, 1, shape)
    restored = sol5.restore_image(image, model)
    assert restored.shape == shape and restored.dtype == np.float64
    assert restored.min() == 0 and restored.max() == 1  # clipped, and both bounds were reached


def test_restore_applies_the_base_weights_with_the_half_shift():
    model = sol5.build_nn_model(16, 16, 8, 1)
    image = np.random.uniform(0, 1, (40, 33))
    # reference: a fresh model of the image's size with copied weights
    reference = sol5.build_nn_model(40, 33, 8, 1)
    reference.set_weights(model.get_weights())
    expected = np.clip(np.asarray(reference(image[None, :, :, None] - 0.5))[0, :, :, 0] + 0.5, 0, 1)
    np.testing.assert_allclose(sol5.restore_image(image, model), expected, atol=1e-5)


def test_restore_sees_later_weight_changes():
    model = sol5.build_nn_model(16, 16, 4, 0)
    image = np.random.uniform(0.2, 0.8, (30, 30))
    first = sol5.restore_image(image, model)
    model.set_weights([w + 0.05 for w in model.get_weights()])
    assert not np.allclose(first, sol5.restore_image(image, model))


def test_restore_works_with_a_model_built_elsewhere():
    # a grader's own base model: Sequential-free but with other layer names and order
    inputs = keras.Input((24, 24, 1), name="grader_input")
    x = keras.layers.Conv2D(5, 3, padding="same", name="c1")(inputs)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="c2")(x)
    model = keras.Model(inputs, keras.layers.Add()([inputs, x]))
    image = np.random.uniform(0, 1, (50, 61))
    restored = sol5.restore_image(image, model)
    assert restored.shape == (50, 61)
    # the centre of a 24x24 window must match the base model on that window
    window = image[10:34, 20:44]
    on_window = np.clip(np.asarray(model(window[None, :, :, None] - 0.5))[0, :, :, 0] + 0.5, 0, 1)
    np.testing.assert_allclose(restored[12:32, 22:42], on_window[2:22, 2:22], atol=1e-5)


def test_restore_refuses_rgb_and_out_of_range():
    model = sol5.build_nn_model(8, 8, 2, 0)
    with pytest.raises(ValueError, match="rgb2gray"):
        sol5.restore_image(np.zeros((20, 20, 3)), model)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sol5.restore_image(np.full((20, 20), 255.0), model)


def test_restore_converts_uint8():
    model = sol5.build_nn_model(8, 8, 2, 0)
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])  # identity network
    image = np.random.randint(0, 256, (20, 20)).astype(np.uint8)
    np.testing.assert_allclose(sol5.restore_image(image, model), image / 255, atol=1e-6)


def test_one_shared_any_size_model_serves_every_size(monkeypatch):
    clones = []
    real_clone = keras.models.clone_model

    def counting_clone(*args, **kwargs):
        clones.append(1)
        return real_clone(*args, **kwargs)
    monkeypatch.setattr(keras.models, "clone_model", counting_clone)
    model = sol5.build_nn_model(16, 16, 4, 1)
    for size in [(16 + 3 * i, 40 - 2 * i) for i in range(5)]:
        assert sol5.restore_image(np.random.uniform(0, 1, size), model).shape == size
    assert len(clones) == 1
    any_size = sol5.model_for_any_size(model)
    assert any_size.input_shape == (None, None, None, 1)
    assert all(a is b for a, b in zip(any_size.weights, model.weights))  # shared, not copied
