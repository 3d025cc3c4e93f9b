"""A TensorBoard log read back: every scalar point of every tag, from an event file, a run folder or a
zip of one, with TensorBoard's own reader (no TensorFlow).

Both kinds of scalar are read: the old kind (``simple_value``, PyTorch's ``add_scalar`` default) and the
new (a scalar tensor: ``add_scalar(..., new_style=True)``, TensorFlow 2's ``tf.summary.scalar``). A run
restarted in its own folder leaves two event files whose steps overlap: as TensorBoard does after a
restart, the later file's points replace the earlier one's from its first step on.

Uploaded logs are hostile: at most ``MAX_BYTES`` are read, a damaged record is an ``EventFileError``
naming it, nothing is unpickled, and nothing is written (a zip's files are read into memory, never
extracted).
"""

import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_BYTES = 50 * 1024 * 1024
MAX_FILES = 1000  # event files in one upload: a run writes one per start
EVENT_FILE_MARK = "tfevents"  # in every event file's name: events.out.tfevents.<time>.<host>...
SCALARS_PLUGIN = "scalars"  # the plugin of a new-style scalar tensor
_MEMORY_ROOT = "/hw3-event-files"  # where a zip's event files are read from, in fsspec's in-memory filesystem


class EventFileError(ValueError):
    """A log that cannot be read; the message says why and what to send instead."""


@dataclass
class Curve:
    """One tag of one run folder: its points in step order, as logged."""

    tag: str
    run: str  # the folder holding its event file, relative to what was read ("" for the top)
    points: list[tuple[int, float]]
    wall_time: float  # when its last point was written

    @property
    def name(self) -> str:
        """The tag, after its run folder when there is one (``validation/epoch_loss``), as TensorBoard shows it."""
        return f"{self.run}/{self.tag}" if self.run else self.tag


def read_scalars(path: str | Path, max_bytes: int = MAX_BYTES) -> dict[str, Curve]:
    """Every scalar curve of the log at ``path`` (an event file, a folder of them or a zip), by name."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, max_bytes)
    if not path.is_file():
        raise EventFileError(f"{path.name} does not exist.")
    if path.stat().st_size > max_bytes:
        raise EventFileError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB; at most {max_bytes / 2**20:.0f} MB "
                             "is read. Send the event file of one run (events.out.tfevents.*), not its checkpoints.")
    if zipfile.is_zipfile(path):
        return _read_zip(path, max_bytes)
    return _curves([("", path.name, str(path))], path.name)


def _read_folder(folder: Path, max_bytes: int) -> dict[str, Curve]:
    files = sorted(file for file in folder.rglob(f"*{EVENT_FILE_MARK}*") if file.is_file())
    _check_files([(str(file.relative_to(folder)), file.stat().st_size) for file in files], folder.name, max_bytes)
    return _curves([(_run(file.parent.relative_to(folder)), file.name, str(file)) for file in files], folder.name)


def _read_zip(path: Path, max_bytes: int) -> dict[str, Curve]:
    import fsspec  # huggingface_hub's dependency; its in-memory filesystem is one TensorBoard's reader can open

    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist()
                       if not info.is_dir() and EVENT_FILE_MARK in PurePosixPath(info.filename).name]
            # The sizes the zip declares bound what is inflated: ZipFile stops at the declared size.
            _check_files([(info.filename, info.file_size) for info in members], path.name, max_bytes)
            memory = fsspec.filesystem("memory")
            root = f"{_MEMORY_ROOT}/{uuid.uuid4().hex}"
            try:
                files = []
                for info in members:
                    member = PurePosixPath(info.filename)
                    # Its own name in memory: a member's path ("../x", "/etc/x") never leaves the upload's folder.
                    stored = f"{root}/{len(files)}/{member.name}"
                    memory.pipe_file(stored, archive.read(info))
                    files.append((_run(member.parent), info.filename, f"memory://{stored}"))
                return _curves(files, path.name)
            finally:
                if memory.exists(root):
                    memory.rm(root, recursive=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as error:
        raise EventFileError(f"{path.name} is not a zip that can be read: {error}.") from None


def _run(folder: PurePosixPath | Path) -> str:
    """A run's name, as TensorBoard gives it: its folder relative to the log's top, "" for the top itself."""
    return "" if folder.as_posix() == "." else folder.as_posix()


def _check_files(files: list[tuple[str, int]], source: str, max_bytes: int) -> None:
    if not files:
        raise EventFileError(f"{source} holds no event file (events.out.tfevents.*): upload the file SummaryWriter "
                             "wrote, or a zip of the run's folder.")
    if len(files) > MAX_FILES:
        raise EventFileError(f"{source} holds {len(files):,} event files; at most {MAX_FILES:,} are read.")
    total = sum(size for _, size in files)
    if total > max_bytes:
        raise EventFileError(f"{source}'s event files hold {total / 2**20:.0f} MB; at most "
                             f"{max_bytes / 2**20:.0f} MB is read. Send one run's folder.")


def _curves(files: list[tuple[str, str, str]], source: str) -> dict[str, Curve]:
    """(run folder, name shown in messages, path TensorBoard opens) per event file -> the curves by name."""
    per_file = []
    for run, shown, opened in files:
        _check_records(opened, shown)
        per_file.append((run, _file_curves(opened, shown)))
    # A run folder's files oldest first (by their first point), each replacing its predecessors' points
    # from its own first step on, tag by tag: a restart rewrites what it logs again.
    per_file.sort(key=lambda item: min((first for _, first, _ in item[1].values()), default=0.0))
    merged: dict[str, Curve] = {}
    for run, curves in per_file:
        for tag, (points, _, wall_time) in curves.items():
            curve = Curve(tag, run, points, wall_time)
            earlier = merged.get(curve.name)
            if earlier is not None:
                first_step = points[0][0]
                curve.points = [point for point in earlier.points if point[0] < first_step] + points
                curve.wall_time = max(wall_time, earlier.wall_time)
            merged[curve.name] = curve
    if not merged:
        raise EventFileError(f"{source} holds no scalars: log them with writer.add_scalar(tag, value, step).")
    for curve in merged.values():
        curve.points.sort(key=lambda point: point[0])  # stable: points logged twice at one step keep their order
    return merged


def _check_records(opened: str, shown: str) -> None:
    """Walks the file's records, checking each one's length and checksums: TensorBoard's loader stops
    quietly at a damaged record (a live run may still be writing it); an upload should say so."""
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    reader = PyRecordReader_New(opened)
    record = 0
    try:
        while True:
            reader.GetNext()
            record += 1
    except errors.OutOfRangeError:
        pass  # the end of the file, after a whole record
    except errors.DataLossError as error:
        if record == 0:
            raise EventFileError(f"{shown} is not a TensorBoard event file (events.out.tfevents.*), or is damaged "
                                 "from its first record.") from None
        what = "ends inside" if "truncat" in str(error).lower() else "has a damaged"
        raise EventFileError(f"{shown} {what} record {record + 1} (after {record:,} whole ones): copy the file again "
                             "once the run has finished (writer.close()).") from None
    finally:
        reader.file_handle.close()
    if record == 0:
        raise EventFileError(f"{shown} is empty: it has no records. Was writer.close() (or flush()) called?")


def _file_curves(opened: str, shown: str) -> dict[str, tuple[list[tuple[int, float]], float, float]]:
    """tag -> (points, first wall time, last wall time) of one event file, every point kept."""
    from google.protobuf.message import DecodeError
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    # size 0: keep every point (the default keeps a random 10,000 per tag). No purge: restarts across
    # files are _curves' to settle, and a step logged twice in one file is the student's to see.
    accumulator = EventAccumulator(opened, size_guidance={"scalars": 0, "tensors": 0}, purge_orphaned_data=False)
    try:
        accumulator.Reload()
    except DecodeError:
        raise EventFileError(f"{shown} is not a TensorBoard event file: a record is not an event.") from None
    curves = {}
    for tag in accumulator.Tags()["scalars"]:
        events = accumulator.Scalars(tag)
        curves[tag] = ([(event.step, float(event.value)) for event in events], events[0].wall_time, events[-1].wall_time)
    for tag in accumulator.Tags()["tensors"]:
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name != SCALARS_PLUGIN:
            continue  # text, histograms, hyperparameters: not curves
        events = accumulator.Tensors(tag)
        values = [tensor_util.make_ndarray(event.tensor_proto) for event in events]
        if any(value.size != 1 for value in values):
            continue
        curves[tag] = ([(event.step, float(value.item())) for event, value in zip(events, values, strict=True)],
                       events[0].wall_time, events[-1].wall_time)
    return curves
