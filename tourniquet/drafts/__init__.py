"""What the DPO and the security officer send: drafts written from one frozen scope.

``figures`` computes once what both drafts say (the scope, the measures from the journal, source
addresses summarised); ``cnil`` is the GDPR Art. 33 notification in the order of the CNIL's form;
``cert_sante`` the declaration to the ARS and CERT Santé (CSP L.1111-8-2); ``people`` the Art. 34
export; ``timeline`` the picture of the attack (PNG); ``words`` the plain French they share.

May import: ``tourniquet.scope``, ``nir``, matplotlib (``timeline`` only). Imported by: ``actions.audit``.
"""

from __future__ import annotations

from tourniquet.drafts.cert_sante import render_cert_sante
from tourniquet.drafts.cnil import render_cnil
from tourniquet.drafts.figures import Figures, measures_from_journal
from tourniquet.drafts.people import PeopleColumns

__all__ = ["Figures", "measures_from_journal", "render_cnil", "render_cert_sante", "PeopleColumns"]
