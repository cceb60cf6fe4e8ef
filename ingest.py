"""Refresh Spørg Rådet's index from the knowledge folder.

    python ingest.py                 refresh everything in knowledge/ (only changes are embedded)
    python ingest.py knowledge/x.md  refresh only these files or folders
    python ingest.py --rebuild       re-embed everything (after changing the embedding model)
    python ingest.py --dry-run       show what would change, change nothing
    python ingest.py --status        what the index holds
    python ingest.py --json          print the summary as JSON
    python ingest.py --fetch         also download the web sources listed in sources.csv
    python ingest.py --fetch --prune remove pages that answer 404/410 at once (default: 2nd time)
    python ingest.py --review knowledge/svar/x.md
                                     record a review of a curated answer, then refresh

Exit status: 0 all good; 1 some documents failed (named, the rest indexed) or a curated answer
needs review (named with the reason; it is not served until reviewed);
2 usage or configuration error (nothing changed).
"""

from __future__ import annotations

import sys

from bot.ingest.cli import main

if __name__ == "__main__":
    sys.exit(main())
