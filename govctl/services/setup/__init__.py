"""What `govctl setup` means: the one-time pieces a deployment stands on, planned like deploy
(the same plan model and rendering) and made idempotently.

Resources, in the order they are applied (each needs the ones before): the APIs the
configuration uses (:mod:`govctl.services.apis`, the list `govctl doctor` checks); the job's
service account; the digest bucket (in the job's region, uniform bucket-level access, public
access prevention enforced); the service account's object rights on **this bucket only**; the
Artifact Registry repository of the image; ``run.invoker`` on **this job** when the job exists
(``govctl deploy`` grants it when it creates the job); read access to each ``[job] secrets``
secret that exists (Secret Manager's API is enabled only when secrets are configured; values
are ``govctl secrets set``'s, never setup's); what keeps the pipeline from piling up files
(:mod:`govctl.services.retention`): the bucket's lifecycle rule on ``_runs/`` and the image
repository's cleanup policies; the service account builds run as, its rights and the source
staging bucket (:mod:`govctl.services.build_account`). Checked and reported, not made:
billing (a problem: nothing is applied without it) and whether the caller may act as the
service account (what deploy will need).

Reads of a service whose API is still disabled are not made (Google refuses them): the
resource is planned as "create if missing", and apply looks again once the API is on.
"""

from govctl.services.setup.applying import apply
from govctl.services.setup.model import SetupPlan
from govctl.services.setup.planning import plan

__all__ = ["SetupPlan", "apply", "plan"]
