"""Checks CAP documents against the OASIS CAP 1.2 schema with the WMO's capvalidator.

Reads one document per file named on the command line; prints one line per file, "valid" or why
not, and exits 1 if any is not valid."""
import sys

from capvalidator import Validator
from lxml import etree

failed = False
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        cap = f.read()
    parser = Validator(cap).get_schema_parser()
    try:
        etree.fromstring(cap, parser)
        print(f"{path}: valid")
    except etree.XMLSyntaxError as error:
        failed = True
        print(f"{path}: {error}")
sys.exit(1 if failed else 0)
