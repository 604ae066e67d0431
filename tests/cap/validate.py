"""Checks CAP documents against the OASIS CAP 1.2 schema with the WMO's capvalidator.

Reads one document per file named on the command line: a CAP alert, or an Atom feed whose entries
hold alerts (each is checked). Prints one line per alert, "valid" or why not, and exits 1 if any is
not valid or a feed holds none."""
import sys

from capvalidator import Validator
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"

failed = False


def check(name, cap):
    global failed
    parser = Validator(cap).get_schema_parser()
    try:
        etree.fromstring(cap, parser)
        print(f"{name}: valid")
    except etree.XMLSyntaxError as error:
        failed = True
        print(f"{name}: {error}")


for path in sys.argv[1:]:
    with open(path, "rb") as f:
        document = f.read()
    root = etree.fromstring(document)
    if root.tag == f"{ATOM}feed":
        alerts = root.findall(f"{ATOM}entry/{ATOM}content/{CAP}alert")
        if not alerts:
            failed = True
            print(f"{path}: a feed without alerts")
        for n, alert in enumerate(alerts):
            check(f"{path} entry {n}", etree.tostring(alert))
    else:
        check(path, document)
sys.exit(1 if failed else 0)
