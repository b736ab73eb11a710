"""Unpacking model bundles: what is accepted, every refusal, and that nothing is left behind.

Hostile archives are built with the standard library's zipfile and tarfile directly, the
way an attacker would, not with `pack_bundle`.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from contextlib import nullcontext
from pathlib import Path

import pytest

from protocol.bundles import (
    BundleLimits,
    BundleRejected,
    is_bundle_name,
    pack_bundle,
    unpack_bundle,
)
from protocol.manifest import FileEntry

MODEL = b"\x08\x07\x12\x04onnx" + os.urandom(4_000)
WEIGHTS = os.urandom(300_000)
LABELS = b"cat\ndog\nbird\n"


def sources(tmp_path: Path, files: dict[str, bytes]) -> dict[str, Path]:
    folder = tmp_path / "sources"
    folder.mkdir(exist_ok=True)
    paths = {}
    for index, (name, content) in enumerate(files.items()):
        path = folder / f"source-{index}"
        path.write_bytes(content)
        paths[name] = path
    return paths


def entry(path: str, content: bytes) -> FileEntry:
    return FileEntry(path=path, sha256=hashlib.sha256(content).hexdigest(), size=len(content))


def zip_of(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return path


def tar_of(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, content = member
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def reject(archive: Path, tmp_path: Path, **limits: int) -> BundleRejected:
    """Unpack expecting a refusal; prove nothing was left and no server path was named."""
    dest = tmp_path / "unpacked"
    with pytest.raises(BundleRejected) as caught:
        unpack_bundle(archive, dest, limits=BundleLimits(**limits))
    assert not dest.exists(), "a refused bundle must leave nothing behind"
    assert str(tmp_path) not in caught.value.message
    assert "unpacked" not in caught.value.message
    return caught.value


# --- accepted ---------------------------------------------------------------------------------


def test_zip_with_external_data_is_unpacked_with_digests(tmp_path: Path) -> None:
    files = {"model.onnx": MODEL, "model.onnx.data": WEIGHTS, "meta/labels.txt": LABELS}
    archive = pack_bundle(sources(tmp_path, files), tmp_path / "digits.zip")
    dest = tmp_path / "unpacked"

    bundle = unpack_bundle(archive, dest)

    assert bundle.root == dest
    assert bundle.entrypoint == "model.onnx"
    assert bundle.files == (
        entry("meta/labels.txt", LABELS),
        entry("model.onnx", MODEL),
        entry("model.onnx.data", WEIGHTS),
    )
    assert (dest / "model.onnx.data").read_bytes() == WEIGHTS
    assert (dest / "meta" / "labels.txt").read_bytes() == LABELS
    assert stat.S_IMODE((dest / "model.onnx").stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["digits.tar", "digits.tar.gz", "digits.tar.xz"])
def test_tar_with_external_data_in_a_folder_is_unpacked(tmp_path: Path, name: str) -> None:
    files = {"net/model.onnx": MODEL, "net/weights.bin": WEIGHTS}
    archive = pack_bundle(sources(tmp_path, files), tmp_path / name)

    bundle = unpack_bundle(archive, tmp_path / "unpacked")

    assert bundle.entrypoint == "net/model.onnx"
    assert bundle.files == (entry("net/model.onnx", MODEL), entry("net/weights.bin", WEIGHTS))


def test_the_archive_kind_comes_from_the_content_not_the_name(tmp_path: Path) -> None:
    zip_path = pack_bundle(sources(tmp_path, {"m.onnx": MODEL}), tmp_path / "a.zip")
    tar_path = pack_bundle(sources(tmp_path, {"m.onnx": MODEL}), tmp_path / "b.tar.gz")
    disguised_zip = zip_path.rename(tmp_path / "upload.tar")
    disguised_tar = tar_path.rename(tmp_path / "upload.zip")

    assert unpack_bundle(disguised_zip, tmp_path / "one").files == (entry("m.onnx", MODEL),)
    assert unpack_bundle(disguised_tar, tmp_path / "two").files == (entry("m.onnx", MODEL),)


def test_dot_slash_prefixes_and_folder_entries_are_normal_tar_output(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("./net")
    folder.type = tarfile.DIRTYPE
    archive = tar_of(tmp_path / "b.tar", [folder, ("./net/model.onnx", MODEL), ("./labels", b"")])

    bundle = unpack_bundle(archive, tmp_path / "unpacked")

    assert bundle.entrypoint == "net/model.onnx"
    assert [item.path for item in bundle.files] == ["labels", "net/model.onnx"]
    assert bundle.files[0].size == 0


def test_files_follow_model_signing_order_not_string_order(tmp_path: Path) -> None:
    files = {"a.x": b"1", "a/b": b"2", "B": b"3", "m.onnx": MODEL}
    archive = pack_bundle(sources(tmp_path, files), tmp_path / "b.zip")

    bundle = unpack_bundle(archive, tmp_path / "unpacked")

    assert [item.path for item in bundle.files] == ["B", "a/b", "a.x", "m.onnx"]


def test_an_existing_empty_dest_dir_is_used_and_a_non_empty_one_refused(tmp_path: Path) -> None:
    archive = pack_bundle(sources(tmp_path, {"m.onnx": MODEL}), tmp_path / "b.zip")
    empty = tmp_path / "empty"
    empty.mkdir()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other").write_bytes(b"x")

    assert unpack_bundle(archive, empty).root == empty
    with pytest.raises(ValueError, match="empty folder"):
        unpack_bundle(archive, busy)
    assert sorted(p.name for p in busy.iterdir()) == ["other"]


def test_a_refusal_after_files_were_written_removes_them_and_keeps_the_given_dir(
    tmp_path: Path,
) -> None:
    # tar is read as a stream: the first model and the weights are on disk when the
    # second model shows up.
    archive = tar_of(
        tmp_path / "b.tar", [("a.onnx", MODEL), ("w.bin", WEIGHTS), ("sub/b.onnx", MODEL)]
    )
    dest = tmp_path / "given"
    dest.mkdir()

    with pytest.raises(BundleRejected) as caught:
        unpack_bundle(archive, dest)

    assert caught.value.code == "bundle_many_models"
    assert list(dest.iterdir()) == []


def test_pack_bundle_is_reproducible(tmp_path: Path) -> None:
    files = sources(tmp_path, {"m.onnx": MODEL, "w.bin": WEIGHTS})

    for suffix in (".zip", ".tar", ".tar.gz"):
        one = pack_bundle(files, tmp_path / f"one{suffix}").read_bytes()
        two = pack_bundle(files, tmp_path / f"two{suffix}").read_bytes()
        assert one == two, suffix
    with pytest.raises(ValueError, match="archive name must end with"):
        pack_bundle(files, tmp_path / "bundle.rar")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("digits.zip", True),
        ("DIGITS.ZIP", True),
        ("digits.tar", True),
        ("digits.tar.gz", True),
        ("digits.tgz", True),
        ("digits.onnx", False),
        ("digits.zip.onnx", False),
        ("digits", False),
    ],
)
def test_is_bundle_name(name: str, expected: bool) -> None:
    assert is_bundle_name(name) is expected


# --- refused: names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../evil.onnx", "net/../../evil.onnx", "/etc/evil.onnx", "..\\evil.onnx", "C:/evil.onnx"],
)
def test_traversal_and_absolute_names_are_refused_in_zip(tmp_path: Path, name: str) -> None:
    archive = zip_of(tmp_path / "b.zip", [("ok.txt", b"x"), (name, MODEL)])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_traversal"
    assert repr(name) in error.message


@pytest.mark.parametrize("name", ["../evil.onnx", "/var/evil.onnx", "a/../../evil.onnx"])
def test_traversal_and_absolute_names_are_refused_in_tar(tmp_path: Path, name: str) -> None:
    archive = tar_of(tmp_path / "b.tar", [("model.onnx", MODEL), (name, b"x")])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_traversal"
    assert not (tmp_path / "evil.onnx").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 250 + "/model.onnx", "longer than 255 characters"),
        ("/".join("d" * 9) + "/model.onnx", "more than 8 folders deep"),
        ("model\x07.onnx", "control character"),
        (".git/config", "never verifies"),
        (".gitignore", "never verifies"),
    ],
)
def test_unusable_names_are_refused(tmp_path: Path, name: str, message: str) -> None:
    archive = zip_of(tmp_path / "b.zip", [("m.onnx", MODEL), (name, b"x")])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_bad_path"
    assert message in error.message


# --- refused: links and special files -----------------------------------------------------------


def test_tar_symlink_is_refused(tmp_path: Path) -> None:
    archive = tar_of(
        tmp_path / "b.tar",
        [("model.onnx", MODEL), special("weights.bin", tarfile.SYMTYPE, "/etc/passwd")],
    )

    error = reject(archive, tmp_path)

    assert error.code == "bundle_link"
    assert error.message == "'weights.bin' is a symbolic link"


def test_tar_hard_link_is_refused(tmp_path: Path) -> None:
    archive = tar_of(
        tmp_path / "b.tar",
        [("model.onnx", MODEL), special("copy.onnx.data", tarfile.LNKTYPE, "model.onnx")],
    )

    error = reject(archive, tmp_path)

    assert error.code == "bundle_link"
    assert "hard link" in error.message


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("weights.bin")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = zip_of(tmp_path / "b.zip", [("model.onnx", MODEL), (link, b"/etc/passwd")])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_link"


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes) -> None:
    archive = tar_of(tmp_path / "b.tar", [("model.onnx", MODEL), special("dev", kind)])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_special_file"
    assert error.message == "'dev' is not a regular file"


# --- refused: sizes and counts -------------------------------------------------------------------


def test_a_compressible_member_over_the_file_limit_is_refused_while_streaming(
    tmp_path: Path,
) -> None:
    # 64 MiB of zeros deflate to about 64 KB: only counting the bytes written catches it.
    archive = zip_of(
        tmp_path / "bomb.zip", [("model.onnx", MODEL), ("weights.bin", bytes(64 << 20))]
    )
    assert archive.stat().st_size < 200_000

    error = reject(archive, tmp_path, max_file_bytes=8 << 20, max_ratio=10**9)

    assert error.code == "bundle_too_large"
    assert error.message == "'weights.bin' unpacks to more than 8388608 bytes"


def test_a_compression_bomb_is_refused_on_its_ratio(tmp_path: Path) -> None:
    archive = zip_of(
        tmp_path / "bomb.zip", [("model.onnx", MODEL), ("weights.bin", bytes(64 << 20))]
    )

    error = reject(archive, tmp_path)  # the default limits: 4 GiB, ratio 200

    assert error.code == "bundle_ratio"
    assert "more than 200 times its own size" in error.message


def test_the_total_size_limit_counts_every_file(tmp_path: Path) -> None:
    members = [("model.onnx", MODEL)] + [(f"w{i}.bin", os.urandom(400_000)) for i in range(3)]
    archive = zip_of(tmp_path / "b.zip", members)

    error = reject(archive, tmp_path, max_total_bytes=1_000_000)

    assert error.code == "bundle_too_large"
    assert error.message == "the archive unpacks to more than 1000000 bytes"


def test_a_zip_whose_header_understates_a_size_is_refused(tmp_path: Path) -> None:
    content = os.urandom(50_000)
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as writer:
        writer.writestr("model.onnx", content)
    raw = bytearray(archive.read_bytes())
    # Patch the declared uncompressed size (local header and central directory) to 100.
    true_size = len(content).to_bytes(4, "little")
    count = raw.count(true_size * 2)
    assert count == 2
    raw = raw.replace(true_size * 2, true_size + (100).to_bytes(4, "little"))
    archive.write_bytes(bytes(raw))

    error = reject(archive, tmp_path)

    assert error.code == "bundle_corrupt"
    assert "'model.onnx'" in error.message


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_too_many_files_are_refused(tmp_path: Path, kind: str) -> None:
    members = [("model.onnx", MODEL)] + [(f"part-{i}.bin", b"x") for i in range(64)]
    archive = (
        zip_of(tmp_path / "b.zip", members)
        if kind == "zip"
        else tar_of(tmp_path / "b.tar", members)
    )

    error = reject(archive, tmp_path)

    assert error.code == "bundle_too_many_files"
    assert "more than 64 files" in error.message


def test_a_flood_of_folder_entries_is_refused(tmp_path: Path) -> None:
    members = [(f"d{i}/", b"") for i in range(300)] + [("model.onnx", MODEL)]

    error = reject(zip_of(tmp_path / "b.zip", members), tmp_path)

    assert error.code == "bundle_too_many_files"


# --- refused: duplicates and models --------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("labels.txt", "'labels.txt' appears more than once"),
        ("LABELS.txt", "'LABELS.txt' appears more than once (names are compared ignoring case)"),
        ("./labels.txt", "'labels.txt' appears more than once"),
        ("labels.txt/inner", "'labels.txt' is both a file and a folder"),
    ],
)
def test_duplicates_are_refused(tmp_path: Path, second: str, message: str) -> None:
    with pytest.warns(UserWarning) if second == "labels.txt" else nullcontext():
        archive = zip_of(
            tmp_path / "b.zip", [("m.onnx", MODEL), ("labels.txt", LABELS), (second, LABELS)]
        )

    error = reject(archive, tmp_path)

    assert error.code == "bundle_duplicate"
    assert error.message.startswith(message)


def test_duplicates_in_a_tar_stream_are_refused_after_writing_the_first(tmp_path: Path) -> None:
    archive = tar_of(tmp_path / "b.tar", [("m.onnx", MODEL), ("w.bin", b"1"), ("w.bin", b"2")])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_duplicate"


def test_a_bundle_without_a_model_is_refused(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "b.zip", [("weights.bin", WEIGHTS), ("labels.txt", LABELS)])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_no_model"
    assert error.message == "the archive holds no .onnx file: a bundle needs exactly one"


def test_a_bundle_with_two_models_is_refused(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "b.zip", [("a.onnx", MODEL), ("int8/A.ONNX", MODEL)])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_many_models"
    assert "2 .onnx files ('a.onnx', 'int8/A.ONNX')" in error.message


@pytest.mark.parametrize("content", [b"", b"not an archive at all", MODEL])
def test_something_else_is_not_an_archive(tmp_path: Path, content: bytes) -> None:
    upload = tmp_path / "upload.zip"
    upload.write_bytes(content)

    error = reject(upload, tmp_path)

    assert error.code == "bundle_not_archive"
    assert error.message == "the upload is not a ZIP or tar archive"


def test_a_truncated_tar_gz_is_corrupt(tmp_path: Path) -> None:
    archive = pack_bundle(
        sources(tmp_path, {"m.onnx": MODEL, "w.bin": WEIGHTS}), tmp_path / "b.tgz"
    )
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])

    error = reject(archive, tmp_path)

    assert error.code == "bundle_corrupt"
