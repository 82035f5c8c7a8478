"""What `govctl destroy` means: every resource govctl made for this configuration, planned as
deletions (the plan model of deploy and setup, every line a ``-``) and deleted in dependency
order; what it keeps unless asked, it says.

Deleted, in this order (each only when it is govctl's: named by the settings, and where the
resource carries labels, labelled ``managed-by: govctl``):

1. the scheduler job (``[schedule] name``) — first, so it cannot start a run meanwhile;
2. the job's running executions — cancelled, so no task runs (and is billed) on: whether
   DeleteJob stops them no Google source says (docs/cli.md, "destroy");
3. the Cloud Run job (``[job] name``) — its executions and its IAM policy (the
   ``roles/run.invoker`` deploy granted) go with it;
4. the job's alert policies (labels ``managed-by: govctl``, ``job: [job] name``), then
5. govctl's e-mail channels that no other policy uses (a channel another job's policy uses
   stays; deleting it would silence that policy);
6. the search data store (``[index] data_store``), then what `index sync` recorded about it
   in the bucket (``_index/`` and the summary's ``index`` section), and setup's lifecycle rule
   on ``_runs/`` (:mod:`govctl.services.retention`), when the bucket stays;
7. the image: the whole Artifact Registry repository when govctl created it (its label) and
   it holds no other image, else ``[job] image``'s package (every digest and tag) and
   govctl's cleanup policies for it (left behind, they would thin out a later image of that
   name);
8. the grants setup made that would outlive it: the job's service account's object rights on
   the bucket and its read access to each ``[job] secrets`` secret, when those stay; the build
   account's log writing on the project, source reading on the staging bucket (which stays,
   gcloud's too) and pushing on the repository, when it stays
   (:mod:`govctl.services.build_account`);
9. only when asked, each with its own flag: the secrets, the bucket with every object in it,
   and last both service accounts (after every grant naming them, so none is left dangling as
   ``deleted:serviceAccount:…``).

A deletion that finds its resource gone is not an error ("already gone"); one that fails is
reported and the rest are still attempted. An API that is off is not read (Google refuses the
read; nothing could be deleted through it either), as in setup. APIs stay enabled, logs stay
until their retention ends, and the Cloud Build staging bucket (shared with gcloud) stays: the
plan's notes say so.
"""

from govctl.services.destroy.deleting import apply
from govctl.services.destroy.model import Destroyed, DestroyPlan, Scope
from govctl.services.destroy.reading import plan

__all__ = ["DestroyPlan", "Destroyed", "Scope", "apply", "plan"]
