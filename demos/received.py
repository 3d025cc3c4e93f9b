"""Files clients upload, deleted from the server's disk as soon as the handler has read them.

Gradio keeps each upload in its cache folder until ``delete_cache`` ages it out (a day here), one copy
per distinct file: at the app's 300 MB limit, a client uploading in a loop would fill a Space's disk
within minutes. So every handler that reads an upload (a model to check, an image) deletes it once read,
whether the input was accepted or not. Only what a client uploaded is deleted: the examples' copies,
which Gradio put in the same folder itself (at the same path when a client uploads the same file), stay.

An image input is sent again by each button of its tab (classify, then "where did it look?"), so the
image read from it is kept in memory at the size the networks see (227x227, 150 kB), for the last
``KEPT_IMAGES`` uploads. A model file is read once: where its check leaves no model to run, the weights read
wait in the session's slot (demos.uploads) for Check pressed again; after one that runs, it asks for the file.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from PIL import Image

from demos.errors import InvalidInput

KEPT_IMAGES = 64
REMEMBERED_DELETIONS = 1000  # to tell a client re-sending a deleted upload why it is gone (a bounded list)


class ReceivedUploads:
    """The uploads of one app (``gr.Blocks``), read once each."""

    def __init__(self, blocks: gr.Blocks):
        self._blocks = blocks
        self._images: OrderedDict[str, Image.Image] = OrderedDict()  # upload path -> the image read, oldest first
        self._deleted: OrderedDict[str, None] = OrderedDict()
        self._kept_files: set[str] = set()
        self._lock = threading.Lock()

    def keep_cached(self, component: gr.components.Component) -> None:
        """Never deletes the files Gradio has cached for ``component`` so far: call it once its examples are made."""
        self._kept_files |= {str(path) for path in component.temp_files}

    def read_file(self, path: str | None, read: Callable[[], object]):
        """``read()`` (which reads the upload at ``path``), then the upload deleted, whatever ``read`` did."""
        self._refuse_deleted(path)
        try:
            return read()
        finally:
            self.delete(path)

    def read_image(self, path: str | None, read: Callable[[], Image.Image]) -> Image.Image:
        """As ``read_file``; the image ``read`` returns is kept, and given again for the same upload."""
        with self._lock:
            kept = self._images.get(str(path))
            if kept is not None:
                self._images.move_to_end(str(path))
        if kept is not None:
            self.delete(path)  # the same file uploaded again
            return kept
        image = self.read_file(path, read)
        if path is not None:
            with self._lock:
                self._images[str(path)] = image
                while len(self._images) > KEPT_IMAGES:
                    self._images.popitem(last=False)
        return image

    def delete(self, path: str | None) -> None:
        """Deletes the file at ``path`` if a client uploaded it, unless it is kept (``keep_cached``)."""
        if path is None:
            return
        path = str(path)
        uploads = self._blocks.upload_file_set
        if path not in uploads or path in self._kept_files:
            return
        Path(path).unlink(missing_ok=True)
        uploads.discard(path)
        try:
            Path(path).parent.rmdir()  # the folder Gradio made for it, named by its hash
        except OSError:
            pass  # not empty: another file of that content is being uploaded
        with self._lock:
            self._deleted[path] = None
            while len(self._deleted) > REMEMBERED_DELETIONS:
                self._deleted.popitem(last=False)

    def was_read(self, path: str | None) -> bool:
        """Whether the upload at ``path`` was read and deleted already."""
        with self._lock:
            return path is not None and str(path) in self._deleted and not Path(path).is_file()

    def _refuse_deleted(self, path: str | None) -> None:
        with self._lock:
            deleted = path is not None and str(path) in self._deleted
        if deleted and not Path(path).is_file():
            raise InvalidInput(f"{Path(path).name} is no longer on the server: each upload is read once, then "
                               "deleted. Upload it again.")


def received_uploads() -> ReceivedUploads:
    """The uploads of the app being built (call it inside ``with gr.Blocks()``): one for all its tabs."""
    blocks = gr.context.Context.root_block
    if blocks is None:
        raise RuntimeError("received_uploads() is called while a gr.Blocks is being built")
    if not hasattr(blocks, "received_uploads"):
        blocks.received_uploads = ReceivedUploads(blocks)
    return blocks.received_uploads
