"""A torch-free reader and writer of torch's zip state-dict format, limited to plain float/int tensors (nfn.md §9.2).

Layout of ``torch.save(state_dict)``: a zip with ``<root>/data.pkl`` (protocol-2 pickle of an ``OrderedDict`` of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``, storages as persistent ids
``("storage", torch.<Type>Storage, key, "cpu", numel)``), one little-endian raw file per storage at
``<root>/data/<key>``, plus ``<root>/version`` and ``<root>/byteorder``. The reader only resolves those globals
(a restricted unpickler); anything else is refused.
"""

import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                  "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
DTYPE_STORAGES = {np.dtype(v): k for k, v in STORAGE_DTYPES.items()}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *_):
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride)).copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, root: str):
        super().__init__(file)
        self.archive, self.root = archive, root

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain tensor state dicts are supported")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        raw = self.archive.read(f"{self.root}/data/{key}")
        return np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"), count=numel).astype(storage_type.dtype)


def load_state_dict(source) -> dict[str, np.ndarray]:
    """Read a ``.pt`` (path, bytes or file object) written by ``torch.save(state_dict)`` as numpy arrays."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with zipfile.ZipFile(source) as archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ValueError(f"not a torch zip checkpoint: {len(pkl)} data.pkl entries")
        root = pkl[0][: -len("/data.pkl")]
        result = _Unpickler(io.BytesIO(archive.read(pkl[0])), archive, root).load()
    return dict(result)


def _unicode(s: str) -> bytes:
    data = s.encode("utf-8")
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _int(i: int) -> bytes:
    return pickle.BININT + struct.pack("<i", i)


def _tuple(items: list[bytes]) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def save_state_dict(state_dict: dict[str, np.ndarray], path, root: str = "archive") -> None:
    """Write ``state_dict`` in torch's zip format (contiguous tensors, one storage each), loadable by ``torch.load``."""
    empty_ordered_dict = _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
    body, storages = [], {}
    for i, (name, value) in enumerate(state_dict.items()):
        arr = np.ascontiguousarray(value).reshape(np.shape(value))  # ascontiguousarray makes 0-d arrays 1-d
        if arr.dtype not in DTYPE_STORAGES:
            raise ValueError(f"tensor {name} has unsupported dtype {arr.dtype}")
        key = str(i)
        storages[key] = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        stride, acc = [], 1
        for dim in reversed(arr.shape):
            stride.insert(0, acc)
            acc *= dim
        pid = _tuple([_unicode("storage"), _global("torch", DTYPE_STORAGES[arr.dtype]), _unicode(key), _unicode("cpu"),
                      _int(arr.size)]) + pickle.BINPERSID
        args = _tuple([pid, _int(0), _tuple([_int(d) for d in arr.shape]), _tuple([_int(s) for s in stride]),
                       pickle.NEWFALSE, empty_ordered_dict])
        body.append(_unicode(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + pickle.REDUCE)
    pkl = pickle.PROTO + b"\x02" + empty_ordered_dict + pickle.MARK + b"".join(body) + pickle.SETITEMS + pickle.STOP
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/data.pkl", pkl)
        archive.writestr(f"{root}/byteorder", "little")
        for key, raw in storages.items():
            archive.writestr(f"{root}/data/{key}", raw)
        archive.writestr(f"{root}/version", "3\n")
