"""Floodlight's pre-registered analysis: functions on DataFrames, a CLI on top.

Independent of Django: it reads an export file (CSV, XLSX, DTA, Parquet). Heavy dependencies
(statsmodels, matplotlib) are imported inside the functions that need them.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
