"""Who may do what: every role set of the service, in one place.

A key has one of four roles. Site roles are confined to one site of one study;
monitor and admin keys see the whole study (an admin key made without a study sees
every study). What each role may do:

| may ...                                            | uploader | clinician | monitor | admin |
|----------------------------------------------------|----------|-----------|---------|-------|
| read studies, subjects, wounds, photos, endpoints  | yes      | yes       | yes     | yes   |
| read the review queue                              | yes      | yes       | yes     | yes   |
| upload photos, create subjects, wounds (WRITERS)   | yes      |           |         | yes   |
| accept, correct, void photos; record closure;      |          | yes       |         | yes   |
|   record, void subject events (CORRECTORS)         |          |           |         |       |
| export CSV, FHIR, CDISC, ADTTE (EXPORTERS)         |          |           | yes     | yes   |
| studies, sites, keys, audit log, edit subjects     |          |           |         | yes   |
| see and set the arm: blinding (ADMIN)              |          |           |         | yes   |
| is confined to one site (SITE_ROLES)               | yes      | yes       |         |       |

Every check reads these names: ``Caller.require(*WRITERS)`` in the domain, and
``caller.role in CORRECTORS`` where a page decides whether to offer a form.
"""

from __future__ import annotations

ADMIN = "admin"
"""Studies, sites, keys, the audit log and the arm (blinding: only admins see it)."""
ROLES = ("uploader", "clinician", "monitor", ADMIN)
"""Every role a key may have."""
SITE_ROLES = ("uploader", "clinician")
"""Roles confined to one site; monitor and admin keys see the whole study."""
WRITERS = ("uploader", ADMIN)
"""May upload photos and create subjects and wounds."""
CORRECTORS = ("clinician", ADMIN)
"""May correct an outline, accept or void a photo, record closure and subject events."""
EXPORTERS = ("monitor", ADMIN)
"""May export the study (every export is audited)."""
