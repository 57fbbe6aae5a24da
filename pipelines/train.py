"""`keras-seq train`: config -> data -> model -> fit -> RUN_DIR.

RUN_DIR holds ``model.keras`` (the best epoch by ``train.monitor``),
``tokenizer.json`` + ``vocab.txt``, ``labels.txt`` (classify) or ``tags.txt``
(tag), ``config.toml`` (resolved), ``metrics.json``, ``history.csv``,
``curves.png``, ``logs/`` (TensorBoard) and, until metrics.json is written,
``backup/`` (`keras_seq.pipelines.resume`: rerunning the same command resumes
exactly where it stopped; a finished run is refused unless ``overwrite``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_seq
from keras_seq.contracts import RunDirectory
from keras_seq.contracts.files import replace_atomically, write_json, write_text
from keras_seq.contracts.tokenizer import TOKENIZER_FILE
from keras_seq.contracts.writer_lock import one_writer
from keras_seq.pipelines.budget import TrainingBudget
from keras_seq.pipelines.config import dump_toml
from keras_seq.pipelines.datasets import count_split_tokens, prepare_text_dir
from keras_seq.pipelines.evaluate import corpus_from_config, evaluate_run
from keras_seq.pipelines.fit_data import FitData, TrainingSetup
from keras_seq.pipelines.optimizers import build_optimizer
from keras_seq.pipelines.precision import machine_summary, precision, resolve_precision
from keras_seq.pipelines.resume import (
    BackupState,
    RoomCheck,
    RunBackup,
    best_file,
    checkpoint_for,
    history_columns,
    history_rows,
    open_backup,
)
from keras_seq.pipelines.tasks import pipeline_for
from keras_seq.pipelines.tokenize import TokenizerSpec
from keras_seq.pipelines.word_vectors import align_vectors
from keras_seq.tasks import get_task

logger = logging.getLogger(__name__)


class _ChiefScores(keras.callbacks.Callback):
    """Several workers: the validation scores a callback computes on each worker alone (tagging
    accuracy and F1) become the chief's on every worker, so checkpoints, early stopping and the
    learning-rate decay decide alike everywhere."""

    KEYS = ("val_accuracy", "val_f1")

    def __init__(self, chiefs) -> None:
        super().__init__()
        self.chiefs = chiefs

    def on_epoch_end(self, epoch, logs=None):
        present = [k for k in self.KEYS if k in logs]  # the same on every worker: the same callbacks ran
        for key, value in zip(present, self.chiefs([float(logs[k]) for k in present])):
            logs[key] = value


# What a collective op raises when another worker of the cluster dies or stops answering.
_PEER_LOST = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.DeadlineExceededError,
)


def train_run(config: dict, run_dir: str | Path, verbose: int = 1, overwrite: bool = False) -> dict:
    """Trains as configured; returns the metrics also written to metrics.json.

    Rerunning an unfinished run resumes it exactly (same batches, same callback
    state); a finished one raises FileExistsError unless `overwrite`. Under
    ``train.strategy = "multi_worker"`` every worker calls this with the same
    arguments: the chief writes `run_dir` and returns its metrics, the others
    train beside it, write only to temporary folders, and return their weights'
    digest (`keras_seq.pipelines.distribute`)."""
    from keras_seq.pipelines.distribute import placement

    where = placement(config["train"]["strategy"])  # first: MultiWorkerMirroredStrategy starts before any TF op
    task = get_task(config["task"])
    if config["train"]["data_service"]:  # before reading anything: an unreachable dispatcher fails in seconds
        from keras_seq.pipelines.data_service import check_dispatcher

        check_dispatcher(config["train"]["data_service"], config["train"]["data_service_timeout"])
    if task.stream and where.replicas > 1:
        raise ValueError(
            f"a {task.name} run carries each track's state from window to window, which one "
            f"state per replica cannot keep across {where.replicas} replicas (Keras mirrors "
            "variables); train it with train.strategy = 'default'"
        )
    for source in config["model"].get("init_from") or []:
        try:  # before any data is read: a wrong path fails in a second, not after the vocabulary
            RunDirectory(source).check()
        except FileNotFoundError as error:
            raise FileNotFoundError(f"model.init_from: {error}") from None
    _check_char_lms(config)
    run = RunDirectory(run_dir)
    config_text = dump_toml(config)
    with contextlib.ExitStack() as lock:
        if where.is_chief:  # the lock is held until the run ends: one writer per run directory
            lock.enter_context(one_writer(run.path, "keras-seq train"))
            state = open_backup(run, config_text, overwrite)
            out = run
        else:  # reads the shared run directory; writes only to a temporary folder
            run.check_can_train(config_text, overwrite)
            state = None if overwrite else BackupState.read(run.backup_state_file)
            out = RunDirectory(tempfile.mkdtemp(prefix=f"keras-seq-worker{where.worker_index}-"))
        try:
            # Before the chief writes anything: every worker read the same backup.
            where.check_same("the epoch to resume from", str(state.epoch if state else 0))
            return _train(config, task, run, out, state, where, config_text, verbose)
        except _PEER_LOST as error:
            if where.workers == 1:
                raise
            saved = BackupState.read(run.backup_state_file)
            raise RuntimeError(
                f"worker {where.worker_index} of {where.workers}: the cluster lost a worker "
                f"({type(error).__name__}); run the same command on every worker again to resume after "
                f"epoch {saved.epoch if saved else 0} (the last one backed up in {run.backup})"
            ) from None
        finally:
            if out is not run:
                shutil.rmtree(out.path, ignore_errors=True)


def _check_char_lms(config: dict) -> None:
    """Frozen contextual character features (model.char_lm_units) need a forward and a backward
    character LM in model.init_from."""
    m = config["model"]
    if not m.get("char_lm_units") or m["char_lm_trainable"]:
        return
    found = set()
    for source in m.get("init_from") or []:
        run = RunDirectory(source)
        if run.tokenizer().level == "char":
            found.add(keras_seq.transfer.run_direction(run))
    missing = [d for d in keras_seq.transfer.DIRECTIONS if d not in found]
    if missing:
        raise ValueError(
            f"model.char_lm_units: model.init_from has no {' and no '.join(missing)} character language model "
            "(task lm, data.level = 'char'), and the character LMs stay frozen; pretrain them, or set "
            "model.char_lm_trainable = true"
        )


def _freeze_char_lms(model, m: dict) -> None:
    """The contextual character layer keeps its pretrained LMs (Flair) unless model.char_lm_trainable."""
    if m.get("char_lm_units") and not m["char_lm_trainable"]:
        for layer in model.layers:
            if isinstance(layer, keras_seq.ContextualCharEmbedding):
                layer.trainable = False


def _train(
    config: dict, task, run: RunDirectory, out: RunDirectory, state, where, config_text: str, verbose: int
) -> dict:
    """`train_run` after the run directory's checks: `run` holds the backup to restore, `out` is where this
    process writes (`run` itself, but for a worker that is not the chief)."""
    from keras_seq.pipelines.distribute import files_digest, weights_digest

    out.path.mkdir(parents=True, exist_ok=True)
    data, train, m = config["data"], config["train"], config["model"]
    keras.utils.set_random_seed(train["seed"])
    write_text(out.config_file, config_text)
    corpus = corpus_from_config(config)
    chars = bool(data["char_features"]) and task.character_features
    spec = TokenizerSpec(
        level=data["level"],
        lower=data["lower"],
        max_len=data["max_len"],
        truncate=data["truncate"],
        char_vocab_file="chars.txt" if chars else None,
        max_word_len=data["max_word_len"],
        lower_words=data["lower_words"],
        zero_digits=data["zero_digits"],
    )
    counts = count_split_tokens(corpus, "train", spec)  # once: the vocabulary and the singletons
    encoder = prepare_text_dir(
        corpus, out.path, spec, vocab_size=data["vocab_size"], min_count=data["min_count"], counts=counts
    )
    done = state.epoch if state else 0
    epochs = range(done, train["epochs"]) if not (state and state.stopped) else range(done, done)
    part = pipeline_for(task)
    fit = part.fit_data(TrainingSetup(config, out, corpus, encoder, counts, epochs))
    contract = [
        TOKENIZER_FILE,
        spec.vocab_file,
        *([spec.char_vocab_file] if chars else []),
        *([task.label_file] if fit.label_vocab is not None and task.label_file else []),
    ]
    where.check_same("the vocabulary and label files", files_digest(out.path, contract))
    matrix = None
    if m["vectors"]:
        matrix, coverage = align_vectors(
            m["vectors"], encoder.vocab, m["embed_dim"], seed=train["seed"], fit=m["vectors_fit"]
        )
        logger.info("pretrained vectors: %s", coverage)
    label_vocab = fit.label_vocab
    compiled_metrics = task.metrics() or []
    if train["data_service"]:
        from keras_seq.pipelines.data_service import ExamplesSeen

        compiled_metrics = [*compiled_metrics, ExamplesSeen()]
    sizes = (len(encoder.vocab), len(label_vocab) if label_vocab else 0)
    chars_size = len(encoder.char_vocab) if encoder.char_vocab else None
    # "auto": bf16 where the hardware has it and the layers are wide enough to gain
    policy, policy_reason = resolve_precision(train["mixed_precision"], config["model"].get("units"))
    steps = fit.batches_per_epoch()
    if train["lr_schedule"] == "slanted_triangular" and steps is None:
        raise ValueError(
            'train.lr_schedule = "slanted_triangular" needs the number of batches per epoch, which this '
            'run\'s data does not give; use train.batching = "sorted"'
        )
    transfer = None
    with where.scope(), precision(policy):
        model = task.build_model(config, *sizes, matrix, chars_size)
        part.start_weights(model, fit, config)
        if m.get("init_from") and state is None:  # a resumed run restores its own weights instead
            chars = list(encoder.char_vocab.tokens) if encoder.char_vocab is not None else None
            transfer = keras_seq.init_from(model, m["init_from"], tokens=list(encoder.vocab.tokens), char_tokens=chars)
        _freeze_char_lms(model, m)
        model.compile(
            optimizer=build_optimizer(train, model, steps),
            loss=task.loss(model, train["label_smoothing"]),
            jit_compile=train["jit_compile"],
            metrics=compiled_metrics or None,
        )
    monitor = train["monitor"]
    mode = "min" if monitor == "val_loss" else "max"
    out.backup.mkdir(exist_ok=True)
    history_rows(out.history, epochs=done)  # rows of epochs the backup does not hold are trained again
    callbacks = list(fit.callbacks)
    if train["gradual_unfreezing"]:
        callbacks.append(keras_seq.GradualUnfreezing(epochs_per_group=train["gradual_unfreezing"]))
    if fit.callbacks and where.workers > 1:
        callbacks.append(_ChiefScores(where.chiefs))
    callbacks += [
        RoomCheck(out.backup),
        checkpoint_for(out.backup, monitor, mode),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=train["patience"]),
    ]
    if train["ema_momentum"] is not None:  # after the checkpoint (it keeps the average), before the backup
        callbacks.append(keras_seq.ValidateMovingAverage())
    if train["lr_decay"]:  # before the CSV logger: history.csv gets the learning rate of every epoch
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                mode=mode,
                factor=train["lr_decay"],
                patience=train["lr_patience"],
                min_delta=0.0,
                verbose=int(verbose > 0),
            )
        )
    callbacks += [
        TrainingBudget(
            train["max_minutes"],
            state.train_seconds if state else 0.0,
            done,
            schedule=train["lr_schedule"] == "budget",
            agree=where.any,
            chiefs=where.chiefs,
        ),
        keras.callbacks.CSVLogger(str(out.history), append=True),
        keras.callbacks.TensorBoard(str(out.logs), write_graph=False),
    ]
    backup = RunBackup(out.backup, state, callbacks, started=time.perf_counter(), restore_from=run.backup)
    if len(epochs):
        with precision(policy):
            _fit(model, fit, where, task, config, epochs, callbacks + [backup], verbose)
    else:
        logger.info("%s: every epoch is trained (backup after epoch %d); finishing the run", run.path, done)
    final = backup.state
    trained = weights_digest(model.get_weights())
    where.check_same("the trained weights", trained)
    if not where.is_chief:
        logger.info(
            "worker %d of %d: trained weights sha256 %s (the same as the chief's); the chief writes %s",
            where.worker_index,
            where.workers,
            trained,
            run.path,
        )
        where.barrier()  # leave once the chief has finished the run
        return {"worker": where.worker_index, "workers": where.workers, "weights_sha256": trained}
    if not model.optimizer.built:  # a rerun that only finishes (every epoch trained): fit never built it
        model.optimizer.build(model.trainable_variables)  # so the best checkpoint's optimizer state loads too
    if final.best_epoch:
        model.load_weights(str(run.backup / best_file(final.best_epoch)))
    model = task.deployable(model, config)
    if keras.backend.standardize_dtype(model.dtype_policy.compute_dtype) != "float32":
        model = _float32_twin(task, config, model, sizes, chars_size, steps)
    replace_atomically(run.model, lambda tmp: model.save(tmp))

    history = history_columns(history_rows(run.history))
    metrics = {
        "task": task.name,
        "train_seconds": round(final.train_seconds, 1),
        "machine": machine_summary(),
        "epochs_run": len(history.get("loss", [])),
        "kept_epoch": final.best_epoch,
        "parameters": int(model.count_params()),
        "best_val_loss": float(min(history.get("val_loss", [math.nan]))),
        "monitor": monitor,
        "data_split": corpus.split_rule(),
    }
    if transfer is not None:
        metrics["init_from"] = {"runs": m["init_from"], **transfer.as_dict()}
    if monitor != "val_loss":
        metrics[f"best_{monitor}"] = float(max(history.get(monitor, [math.nan])))
    if train["mixed_precision"]:  # the policy training ran under ("auto" resolved); model.keras is float32
        metrics["mixed_precision"] = policy or "float32"
        if train["mixed_precision"] == "auto":
            metrics["mixed_precision_auto"] = policy_reason
    if where.distributed or train["data_service"]:
        metrics["distribution"] = {
            "strategy": where.name,
            "workers": where.workers,
            "replicas": where.replicas,
            "data_service": train["data_service"] or None,
            "weights_sha256": trained,
        }
    metrics[part.report_split] = evaluate_run(
        run.path, None, split=part.report_split, corpus=corpus, model=model, limit=data["limit"]
    )
    if part.report_split != "validation":
        metrics["validation"] = evaluate_run(
            run.path, None, split="validation", corpus=corpus, model=model, limit=data["limit"]
        )
    _plot_curves(history, run.curves)
    write_json(run.metrics_file, metrics)
    shutil.rmtree(run.backup)  # only now: a kill before this line resumes, after it the run is finished
    if train["data_service"]:
        from keras_seq.pipelines.data_service import SHARDS_DIR

        shutil.rmtree(run.path / SHARDS_DIR, ignore_errors=True)
    where.barrier()
    return metrics


def _fit(model, fit: FitData, where, task, config: dict, epochs: range, callbacks: list, verbose: int) -> None:
    """`model.fit` over the remaining epochs, distributed as `where` says."""
    validation = where.distribute(fit.validation)
    # shuffle=False: the datasets shuffle themselves (seeded per epoch); Keras would only warn that it cannot.
    model.fit(
        where.distribute(fit.train, task.loss_unit(config)),
        validation_data=validation,
        epochs=epochs.stop,
        initial_epoch=epochs.start,
        steps_per_epoch=fit.steps_per_epoch,
        validation_steps=int(fit.validation.cardinality()) if validation is not fit.validation else None,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,
    )


def _float32_twin(task, config: dict, model, sizes: tuple, chars_size: int | None, steps: int | None):
    """The trained model with float32 layers (what the run directory keeps: exports compute in float32),
    compiled as it was."""
    twin = task.build_model(config, *sizes, None, chars_size)
    twin.set_weights(model.get_weights())
    twin.compile(
        optimizer=build_optimizer(config["train"], twin, steps),
        loss=task.loss(twin, config["train"]["label_smoothing"]),
        metrics=task.metrics(),
    )
    twin.optimizer.build(twin.trainable_variables)  # with the trained optimizer state, as the model had it
    for mine, trained in zip(twin.optimizer.variables, model.optimizer.variables, strict=True):
        mine.assign(keras.ops.cast(trained.value, mine.dtype))
    return twin


def _plot_curves(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = sorted(k for k in history if k.endswith(("accuracy", "_f1")))
    fig, axes = plt.subplots(1, 2 if scores else 1, figsize=(11 if scores else 6, 4), squeeze=False)
    for ax, keys, label in (
        (axes[0, 0], sorted(k for k in history if "loss" in k), "loss"),
        *(((axes[0, 1], scores, "accuracy / F1"),) if scores else ()),
    ):
        for key in keys:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", label=key)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
