"""The checkpoints of `mnist_cnn`'s runs, in RUN/checkpoints.

epoch-NNNN.pt is written every checkpoint_every epochs (recipe.py) and after the last,
the newest checkpoint_keep kept; best.pt holds the weights with the best monitored
value. Each is a torch.save file sealed by its zip comment, a JSON object: backend,
spec_hash and sha256 (of the bytes before the comment's length field). A checkpoint is
written atomically (a killed run never leaves half a file behind); one that fails its seal
is never used; one of another backend or network is refused. A checkpoint that cannot be
written (a full disk) stops the run (exit 1) and leaves the previous one in place.
"""

import hashlib
import io
import json
import os
import random
import sys
import zipfile

import numpy as np
import torch


class DamagedCheckpointError(Exception):
    """A checkpoint file that is truncated, empty or altered: its seal does not verify."""


def epoch_checkpoints(folder):
    """The epoch checkpoints in `folder`, oldest first."""
    return sorted(folder.glob("epoch-*.pt"))


def last_good_checkpoint(folder):
    """What a run that stops now leaves in `folder` to resume from, for its last message."""
    kept = epoch_checkpoints(folder)
    return f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written"


def write_sealed(path, archive, spec_hash):
    """Write `archive`, the bytes of a zip archive without a comment (as torch.save
    writes one), to `path`, with the seal as its comment: a JSON object naming this program's
    backend and `spec_hash`, with the SHA-256 of every byte before the comment's length. A
    failed write (a full disk) stops the run and leaves the previous `path` as it was."""
    body = archive[:-2]  # a zip archive ends with its comment's length, here 0
    seal = json.dumps({"backend": "torch", "spec_hash": spec_hash,
                       "sha256": hashlib.sha256(body).hexdigest()}).encode()
    partial = path.with_name(path.name + ".tmp")
    try:
        with partial.open("wb") as file:
            file.write(body + len(seal).to_bytes(2, "little") + seal)
            file.flush()
            os.fsync(file.fileno())  # on the disk before it takes the place of the old one
        os.replace(partial, path)
    except OSError as error:  # as in Lightning, a checkpoint that cannot be saved ends the run
        partial.unlink(missing_ok=True)
        sys.exit(f"error: cannot write {path} ({error.strerror or error}): stopped; "
                 f"{last_good_checkpoint(path.parent)}")


def read_sealed(path, spec_hash):
    """The bytes of the checkpoint at `path`, once its seal verifies them. A damaged file
    raises DamagedCheckpointError; a checkpoint of another backend, or of a network whose
    spec hash is not `spec_hash`, ends the program."""
    try:
        data = path.read_bytes()
        if not data:
            raise DamagedCheckpointError(f"{path} is damaged (empty)")
        seal_text = zipfile.ZipFile(io.BytesIO(data)).comment
        seal = json.loads(seal_text)
        backend, network, checksum = seal["backend"], seal["spec_hash"], seal["sha256"]
    # what zipfile and json raise for a damaged file (NotImplementedError: a garbled version)
    except (OSError, zipfile.BadZipFile, NotImplementedError, ValueError, KeyError,
            TypeError) as error:
        raise DamagedCheckpointError(f"{path} is damaged (unreadable: {error})") from None
    body = data[:-len(seal_text) - 2]  # the seal and its length (2 bytes) end the file
    if hashlib.sha256(body).hexdigest() != checksum:
        raise DamagedCheckpointError(f"{path} is damaged (its content does not match its "
                                     "checksum)")
    if backend != "torch":
        sys.exit(f"error: {path} is a {backend} checkpoint, not this PyTorch program's; "
                 "choose another --out")
    if network != spec_hash:
        sys.exit(f"error: {path} holds another network (spec hash {network}, this program's "
                 f"{spec_hash}); choose another --out")
    return data


def first_intact(paths, spec_hash):
    """The first of `paths` whose checkpoint is intact (read_sealed), and its bytes; a
    damaged one is skipped, saying so. (None, None) when none is."""
    for path in paths:
        try:
            return path, read_sealed(path, spec_hash)
        except DamagedCheckpointError as error:
            print(f"warning: {error}: not used")
    return None, None


def newest_intact(folder, spec_hash):
    """The newest intact epoch checkpoint in `folder`, and its bytes, for --resume; ends the
    program when none is."""
    path, contents = first_intact(reversed(epoch_checkpoints(folder)), spec_hash)
    if path is None:
        sys.exit(f"error: no checkpoint in {folder} is intact, so the run cannot resume; "
                 "remove them to start afresh, or choose another --out")
    return path, contents


def weights_to_predict_with(folder, spec_hash):
    """The best (else the newest) intact checkpoint in `folder`, and its bytes, for
    --predict; ends the program when there is none."""
    saved = [path for path in (folder / "best.pt", *reversed(epoch_checkpoints(folder)))
             if path.exists()]
    if not saved:
        sys.exit(f"error: {folder} holds no checkpoint to predict with; train first")
    path, contents = first_intact(saved, spec_hash)
    if path is None:
        sys.exit(f"error: {folder} holds no intact checkpoint to predict with")
    return path, contents


def load_best_weights(folder, spec_hash, model):
    """Put the weights of best.pt in `folder` into `model`; False when there is none. A
    damaged one ends the program: no test metrics without the best weights."""
    path = folder / "best.pt"
    if not path.exists():
        return False
    try:
        load_training_state(read_sealed(path, spec_hash), model)
    except DamagedCheckpointError as error:
        sys.exit(f"error: {error}: no test metrics without the best weights; the epoch "
                 "checkpoints are kept")
    return True


def refuse_other_backends(folder):
    """End the program when `folder` holds another backend's checkpoints: a run directory
    never holds both kinds."""
    foreign = sorted(folder.glob("*.npz"))  # TensorFlow's train.py writes these
    if foreign:
        sys.exit(f"error: {folder} holds TensorFlow checkpoints ({foreign[0].name}), not "
                 "this PyTorch program's; choose another --out")


def keep_newest(folder, keep):
    """Remove all but the newest `keep` epoch checkpoints in `folder`."""
    for old in epoch_checkpoints(folder)[:-keep]:
        old.unlink()


def remove_partial_files(folder):
    """Remove what a run killed while saving left behind in `folder`."""
    for partial in folder.glob("*.tmp"):
        partial.unlink()


def save_training_state(path, spec_hash, position, model, optimizer, scaler):
    """Everything a resume needs into a sealed checkpoint at `path`: the weights of `model`,
    the state of `optimizer` and of the loss `scaler`, the random generators, and `position`
    (where the run is: epoch, step, schedule, best)."""
    numpy_state = np.random.get_state()
    checkpoint = {
        **position,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": {
            "python": random.getstate(),
            # the key array as a list, so that the file loads with weights_only=True
            "numpy": (numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]),
            "torch": torch.get_rng_state(),
            # the GPUs' generators, when this process uses CUDA
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        },
    }
    archive = io.BytesIO()
    torch.save(checkpoint, archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_sealed(path, archive.getvalue(), spec_hash)


def load_training_state(contents, model, optimizer=None, scaler=None):
    """Put a checkpoint (the bytes read_sealed verified) into `model`; with `optimizer` (a
    resume) into it, the loss `scaler` and the random generators too. Returns its position:
    epoch, step, schedule, best."""
    checkpoint = torch.load(io.BytesIO(contents), map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        random.setstate(checkpoint["rng"]["python"])
        name, keys, *state = checkpoint["rng"]["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), *state))
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if torch.cuda.is_initialized() and checkpoint["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
    return {key: checkpoint[key] for key in ("epoch", "step", "schedule", "best")}
