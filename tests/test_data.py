"""Data loading: the CIFAR-10 python layout, image folders, bad input, the input pipeline."""

from __future__ import annotations

import http.server
import os
import pickle
import threading

import numpy as np
import pytest
from PIL import Image

from cifar_fixtures import batch_files, real_cifar_archive, small_archive, write_archive, write_folder  # noqa: F401
from gan.config import CIFAR10_CLASSES
from gan.data import DataError, ensure_cifar10_archive, load_dataset, make_pipeline


def test_archive_loads_train_split(small_archive):
    dataset = load_dataset(small_archive)
    assert dataset.images.shape == (100, 32, 32, 3)
    assert dataset.images.dtype == np.uint8
    assert dataset.labels.shape == (100,)
    assert dataset.class_names == CIFAR10_CLASSES


def test_archive_loads_test_split(small_archive):
    assert len(load_dataset(small_archive, split="test")) == 20


def test_channels_first_rows_become_rgb(tmp_path):
    files = batch_files(per_batch=10)
    batch = pickle.loads(files["data_batch_1"])
    batch[b"data"][0] = np.concatenate([np.full(1024, 200), np.full(1024, 100), np.full(1024, 7)]).astype(np.uint8)
    files["data_batch_1"] = pickle.dumps(batch)
    dataset = load_dataset(write_archive(tmp_path / "a.tar.gz", files))
    assert dataset.images[0, 5, 5].tolist() == [200, 100, 7]


def test_extracted_folder_loads(tmp_path):
    folder = write_folder(tmp_path)
    assert len(load_dataset(folder)) == 100
    assert len(load_dataset(tmp_path)) == 100


def test_truncated_archive_error(tmp_path, small_archive):
    truncated = tmp_path / "cifar-10-python.tar.gz"
    truncated.write_bytes(small_archive.read_bytes()[:2000])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_dataset(truncated)


def test_not_an_archive_error(tmp_path):
    bogus = tmp_path / "cifar-10-python.tar.gz"
    bogus.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(DataError, match=str(bogus)):
        load_dataset(bogus)


def test_missing_member_error(tmp_path):
    files = batch_files()
    del files["data_batch_3"]
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files))


def test_wrong_shape_error(tmp_path):
    files = batch_files()
    batch = pickle.loads(files["data_batch_2"])
    batch[b"data"] = batch[b"data"][:, :100]
    files["data_batch_2"] = pickle.dumps(batch)
    with pytest.raises(DataError, match=r"data_batch_2.*\(N, 3072\)"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files))


def test_label_out_of_range_error(tmp_path):
    files = batch_files()
    batch = pickle.loads(files["data_batch_1"])
    batch[b"labels"][0] = 10
    files["data_batch_1"] = pickle.dumps(batch)
    with pytest.raises(DataError, match="labels must lie in 0..9"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files))


def test_label_count_mismatch_error(tmp_path):
    files = batch_files()
    batch = pickle.loads(files["data_batch_4"])
    batch[b"labels"] = batch[b"labels"][:-1]
    files["data_batch_4"] = pickle.dumps(batch)
    with pytest.raises(DataError, match="20 images but 19 labels"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_malicious_pickle_rejected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = batch_files()
    files["data_batch_1"] = pickle.dumps({b"data": _Exploit(), b"labels": []})
    with pytest.raises(DataError, match="forbidden global"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files))
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_truncated_pickle_error(tmp_path):
    files = batch_files()
    files["test_batch"] = files["test_batch"][:500]
    with pytest.raises(DataError, match="test_batch: corrupt"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files), split="test")


def test_missing_path_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nowhere.tar.gz")


def _write_image_folder(root, sizes=((40, 60), (32, 32), (100, 20))):
    for index, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for number, size in enumerate(sizes):
            color = (200, 10, 10) if index == 0 else (10, 10, 200)
            Image.new("RGB", size, color).save(root / name / f"{number}.png")
    return root


def test_image_folder_loads(tmp_path):
    dataset = load_dataset(_write_image_folder(tmp_path / "pictures"))
    assert dataset.images.shape == (6, 32, 32, 3)
    assert dataset.class_names == ("cats", "dogs")
    assert dataset.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert dataset.images[0, 16, 16].tolist() == [200, 10, 10]


def test_image_folder_corrupt_image_error(tmp_path):
    root = _write_image_folder(tmp_path / "pictures")
    (root / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load_dataset(root)


def test_image_folder_without_classes_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(tmp_path / "empty")


def _serve_bytes(payload: bytes):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_download_checksum_mismatch_leaves_nothing(tmp_path, small_archive):
    server = _serve_bytes(small_archive.read_bytes())
    try:
        url = f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz"
        with pytest.raises(DataError, match="expected c58f30108f718f92721af3b95e74349a"):
            ensure_cifar10_archive(tmp_path / "cache", url=url)
    finally:
        server.shutdown()
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_verified_is_renamed(tmp_path, small_archive):
    import hashlib

    payload = small_archive.read_bytes()
    server = _serve_bytes(payload)
    try:
        url = f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz"
        path = ensure_cifar10_archive(tmp_path / "cache", url=url, md5=hashlib.md5(payload).hexdigest())
    finally:
        server.shutdown()
    assert path.read_bytes() == payload


def test_download_failure_says_how_to_place_by_hand(tmp_path):
    with pytest.raises(DataError, match="place it at"):
        ensure_cifar10_archive(tmp_path / "cache", url="http://127.0.0.1:9/cifar-10-python.tar.gz")


def test_pipeline_batches_in_range(small_archive):
    dataset = load_dataset(small_archive)
    images, labels = next(iter(make_pipeline(dataset, batch_size=16, seed=1)))
    assert images.shape == (16, 32, 32, 3)
    assert labels.shape == (16,)
    assert float(images.numpy().min()) >= -1.0
    assert float(images.numpy().max()) <= 1.0


def test_pipeline_resumes_same_order(small_archive):
    dataset = load_dataset(small_archive)
    straight = iter(make_pipeline(dataset, batch_size=16, seed=3))
    batches = [next(straight) for _ in range(9)]  # crosses an epoch boundary (100 images)
    resumed = next(iter(make_pipeline(dataset, batch_size=16, seed=3, start_image=16 * 8)))
    assert np.array_equal(batches[8][0].numpy(), resumed[0].numpy())
    assert np.array_equal(batches[8][1].numpy(), resumed[1].numpy())


def test_pipeline_shuffles_each_epoch(small_archive):
    dataset = load_dataset(small_archive)
    iterator = iter(make_pipeline(dataset, batch_size=100, seed=0))
    first, second = next(iterator)[1].numpy(), next(iterator)[1].numpy()
    assert not np.array_equal(first, second)


def test_real_cifar10_loads(real_cifar_archive):
    dataset = load_dataset(real_cifar_archive)
    assert dataset.images.shape == (50000, 32, 32, 3)
    assert np.bincount(dataset.labels).tolist() == [5000] * 10


def test_float_labels_rejected(tmp_path):
    files = batch_files()
    batch = pickle.loads(files["data_batch_1"])
    batch[b"labels"] = [1.7] * len(batch[b"labels"])
    files["data_batch_1"] = pickle.dumps(batch)
    with pytest.raises(DataError, match="not a list of integers"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files))


def test_empty_batches_rejected(tmp_path):
    rng = np.random.default_rng(0)
    from cifar_fixtures import make_batch

    files = batch_files()
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        files[name] = pickle.dumps(make_batch(rng, 0))
    with pytest.raises(DataError, match="contain no images"):
        load_dataset(write_archive(tmp_path / "a.tar.gz", files))


def test_huge_member_rejected_unread(tmp_path):
    import io
    import tarfile

    path = tmp_path / "declared.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = 10**11
        archive.addfile(info)  # the header alone: a member declaring 100 GB
    with pytest.raises(DataError):
        load_dataset(path)


def test_sixteen_bit_image_scaled(tmp_path):
    root = tmp_path / "pictures"
    (root / "grey").mkdir(parents=True)
    Image.fromarray(np.full((40, 40), 32768, dtype=np.uint16)).save(root / "grey" / "a.png")
    dataset = load_dataset(root)
    assert 120 <= int(dataset.images[0, 0, 0, 0]) <= 135
