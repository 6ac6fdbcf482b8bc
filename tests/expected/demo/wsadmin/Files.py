# -*- coding: utf-8 -*-
# Lifeline repair plan e68976912931c2e09107933ccd7ada814bd23be2d391931486f336b064b58f42
# made from the ledger at position 436 (checkpoint size 436, root b62a8bd6a9ac3523e865eff404c4bfa6ed1c4fb9d8c3bb9453b6e79d90f0904a).
#
# Files commands. Run from app_server_root/profiles/<dm_profile>/bin, step by step
# as the runbook says:
#   ./wsadmin.sh -lang jython -f Files.py STEP [STEP ...]
# Without a step number it lists its steps.
import sys

execfile("filesAdmin.py")

# Where exportSyncedResourceInfo writes and generateSyncReports reads and writes: an
# existing directory, forward slashes; in a cluster, on the node that runs the app.
EXPORT_DIR = "/opt/IBM/lifeline/export"
REPORT_DIR = "/opt/IBM/lifeline/reports"

def step_7():
    # Export the synced resources of Files and generate its sync reports
    print(FilesLibraryService.exportSyncedResourceInfo(EXPORT_DIR + "/Files.xml", "community"))

STEPS = {
    7: (step_7, "Export the synced resources of Files and generate its sync reports"),
}

def main(args):
    if not args:
        for n in sorted(STEPS.keys()):
            print("%d  %s" % (n, STEPS[n][1]))
        return
    for a in args:
        n = int(a)
        if n not in STEPS:
            raise Exception("step %d has no Files commands in this plan" % n)
        print("step %d: %s" % (n, STEPS[n][1]))
        STEPS[n][0]()

main(sys.argv)
