"""safetensors_np.py - the one safetensors reader and writer of relloc's
Python scripts (tests/ref/gen_ref.py, bench/extract_parity.py), with numpy
alone, as man/rl-ckpt.5 lays the format out: an 8-byte little-endian
header length, the JSON header (padded with spaces to a multiple of 8),
then each tensor's bytes in order.
"""
import json

import numpy as np

DTYPES = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8', 'I32': '<i4', 'U8': 'u1'}
NAMES = {'<f4': 'F32', '<f8': 'F64', '<i8': 'I64', '<i4': 'I32', '|u1': 'U8'}


def load_safetensors(path):
    """The tensors of path (name -> numpy array) and its metadata."""
    with open(path, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {})
    tensors = {}
    for name, t in header.items():
        begin, end = t['data_offsets']
        dt = np.dtype(DTYPES[t['dtype']])
        a = np.frombuffer(data, dt, (end - begin) // dt.itemsize, begin)
        tensors[name] = a.reshape(t['shape'])
    return tensors, meta


def save_safetensors(path, tensors, metadata=None):
    """Write tensors (name -> array, in that order) and, when given and
    not empty, the metadata (str -> str) to path."""
    header, arrays, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, a in tensors.items():
        a = np.asarray(a, order='C')
        header[name] = {'dtype': NAMES[a.dtype.str],
                        'shape': list(a.shape),
                        'data_offsets': [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(len(h).to_bytes(8, 'little'))
        f.write(h)
        for a in arrays:
            f.write(a.tobytes())
