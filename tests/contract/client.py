"""A partner's system, written against a client that openapi-python-client generated from the
node's OpenAPI document (tests/it/contract.rs generates it, then runs this against a node).

Files a report, updates it, reads the picture (JSON and GeoJSON) and retracts the report, through
the generated functions and models (the GeoJSON through the generated model alone, as the generator
types one answer per operation); any answer the generated models cannot parse, or that is not the
one documented, fails the run. Usage: client.py BASE_URL TOKEN OBSERVED_AT (RFC 3339, in the past by the node's clock)
"""

import datetime
import sys

from lagesbild_client import AuthenticatedClient
from lagesbild_client.api.reports import file_report, get_report, retract_report, update_report
from lagesbild_client.api.situation import situation
from lagesbild_client.models import (
    Action,
    Category,
    FeatureCollection,
    Location,
    OwnReport,
    PageFormat,
    Person,
    PersonRole,
    Report,
    ReportContent,
    RetractRequest,
    Severity,
    Site,
    SiteKind,
    SituationResponse,
    Source,
    Tlp,
)


def expect(response, kind, status):
    assert response.status_code == status, f"{response.status_code}: {response.content!r}"
    assert isinstance(response.parsed, kind), f"parsed as {type(response.parsed)}: {response.content!r}"
    return response.parsed


def main(base_url, token, observed):
    client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    content = ReportContent(
        observed_at=datetime.datetime.fromisoformat(observed),
        category=Category.SUSPICIOUS_ACTIVITY,
        severity=Severity.MODERATE,
        title="Persons trying doors at Hagebyskolan",
        description="Two persons tried the doors of the east wing.",
        location=Location(
            lat=58.611,
            lon=16.151,
            place_name="Hageby",
            site=Site(kind=SiteKind.SCHOOL, name="Hagebyskolan"),
            municipality_code="0581",
        ),
        persons=[Person(role=PersonRole.WITNESS, name="Anna Andersson", age=44)],
        actions=[Action(what="Guard patrol checked the perimeter", by="Patrol 2")],
        tlp=Tlp.AMBERSTRICT,
    )
    filed = expect(file_report.sync_detailed(client=client, body=content), Report, 201)
    assert filed.version == 1 and filed.category == Category.SUSPICIOUS_ACTIVITY, filed
    assert filed.tlp == Tlp.AMBERSTRICT and filed.location.site.kind == SiteKind.SCHOOL, filed

    content.severity = Severity.SEVERE
    updated = expect(
        update_report.sync_detailed(str(filed.id), client=client, body=content, if_match='"1"'), Report, 200
    )
    assert updated.version == 2 and updated.severity == Severity.SEVERE, updated
    got = expect(get_report.sync_detailed(str(filed.id), client=client), Report, 200)
    assert got.version == 2, got

    page = expect(
        situation.sync_detailed(
            client=client,
            category=[Category.SUSPICIOUS_ACTIVITY, Category.BURGLARY],
            min_severity=Severity.MODERATE,
            source=Source.OWN,
        ),
        SituationResponse,
        200,
    )
    mine = [r for r in page.reports if isinstance(r, OwnReport) and str(r.id) == str(filed.id)]
    assert len(mine) == 1 and mine[0].version == 2, page.reports
    # The operation answers JSON or GeoJSON by `format`; the generator types the JSON answer, so the
    # GeoJSON is read with the client's own connection and the generated FeatureCollection model.
    answer = client.get_httpx_client().get("/api/v1/situation", params={"format": PageFormat.GEOJSON.value})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/geo+json", answer
    geojson = FeatureCollection.from_dict(answer.json())
    assert any(str(f.id) == str(filed.id) for f in geojson.features), geojson

    reason = RetractRequest(reason="Filed twice; see the other report")
    retracted = expect(
        retract_report.sync_detailed(str(filed.id), client=client, body=reason, if_match='"2"'), Report, 200
    )
    assert retracted.version == 3 and retracted.retracted.reason == reason.reason, retracted
    page = expect(situation.sync_detailed(client=client), SituationResponse, 200)
    assert all(str(r.id) != str(filed.id) for r in page.reports), page.reports
    print("filed, updated, read, retracted: ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
