# -*- coding: utf-8 -*-
# Lifeline repair plan e68976912931c2e09107933ccd7ada814bd23be2d391931486f336b064b58f42
# made from the ledger at position 436 (checkpoint size 436, root b62a8bd6a9ac3523e865eff404c4bfa6ed1c4fb9d8c3bb9453b6e79d90f0904a).
#
# Communities commands. Run from app_server_root/profiles/<dm_profile>/bin, step by step
# as the runbook says:
#   ./wsadmin.sh -lang jython -f Communities.py STEP [STEP ...]
# Without a step number it lists its steps.
import sys

execfile("communitiesAdmin.py")

# Where exportSyncedResourceInfo writes and generateSyncReports reads and writes: an
# existing directory, forward slashes; in a cluster, on the node that runs the app.
EXPORT_DIR = "/opt/IBM/lifeline/export"
REPORT_DIR = "/opt/IBM/lifeline/reports"

# The uuid of each community recreated by hand, by its old uuid: fill in before the
# assign steps (the runbook's recreate step says when).
NEW_UUID = {
    "4689ff74-6a4a-470a-8347-f2c6a101b803": "",  # step 13: HR Americas 39
}

def new_uuid(old):
    value = NEW_UUID.get(old, "")
    if not value:
        raise Exception("fill in NEW_UUID[\"" + old + "\"] with the recreated community's uuid first")
    return value

def step_2():
    # Pause LifecycleRetryQueuedEvents
    print(CommunitiesScheduler.pauseSchedulingTask("LifecycleRetryQueuedEvents"))

def step_3():
    # Clear every queued community event
    print(CommunitiesQEventService.clearQueuedEventsByResourceType("community"))

def step_4():
    # Export the synced resources of Activities and generate its sync reports
    print(CommunitiesRemoteAppService.generateSyncReports(EXPORT_DIR + "/Activities.xml", REPORT_DIR))

def step_5():
    # Export the synced resources of Blog and generate its sync reports
    print(CommunitiesRemoteAppService.generateSyncReports(EXPORT_DIR + "/Blog.xml", REPORT_DIR))

def step_6():
    # Export the synced resources of IdeationBlog and generate its sync reports
    print(CommunitiesRemoteAppService.generateSyncReports(EXPORT_DIR + "/IdeationBlog.xml", REPORT_DIR))

def step_7():
    # Export the synced resources of Files and generate its sync reports
    print(CommunitiesRemoteAppService.generateSyncReports(EXPORT_DIR + "/Files.xml", REPORT_DIR))

def step_8():
    # Export the synced resources of Forum and generate its sync reports
    print(CommunitiesRemoteAppService.generateSyncReports(EXPORT_DIR + "/Forum.xml", REPORT_DIR))

def step_9():
    # Export the synced resources of Wiki and generate its sync reports
    print(CommunitiesRemoteAppService.generateSyncReports(EXPORT_DIR + "/Wiki.xml", REPORT_DIR))

def step_10():
    # Export the synced resources of StatusUpdates and generate its sync reports
    print(CommunitiesRemoteAppService.generateSyncReports(EXPORT_DIR + "/StatusUpdates.xml", REPORT_DIR))

def step_11():
    # Resume LifecycleRetryQueuedEvents
    print(CommunitiesScheduler.resumeSchedulingTask("LifecycleRetryQueuedEvents"))

def step_15():
    # Resync Activities for 2 communities
    print(CommunitiesRemoteAppService.resyncRemoteAppsForCommunityAndWidget("93dc6748-abb1-4b6a-bd52-7d9764003aa8", "Activities"))
    print(CommunitiesRemoteAppService.resyncRemoteAppsForCommunityAndWidget("bbc684ff-d7d7-4d02-8065-6ad9e599e916", "Activities"))

def step_16():
    # Assign 1 orphaned Files container where it belongs
    print(CommunitiesRemoteAppService.assignRemoteApp("Files", "8513a0a7-7516-45ab-92d9-faeed8b75afa", "4689ff74-6a4a-470a-8347-f2c6a101b803", new_uuid("4689ff74-6a4a-470a-8347-f2c6a101b803"), "col2"))

def step_17():
    # Assign 1 orphaned Forum container where it belongs
    print(CommunitiesRemoteAppService.assignRemoteApp("Forum", "303b3927-0aaf-4b3e-9fb4-0cb647ad7920", "4689ff74-6a4a-470a-8347-f2c6a101b803", new_uuid("4689ff74-6a4a-470a-8347-f2c6a101b803"), "col2"))

def step_18():
    # Assign 1 orphaned StatusUpdates container where it belongs
    print(CommunitiesRemoteAppService.assignRemoteApp("StatusUpdates", "27393ca3-d791-4442-bdce-b943790f130f", "4689ff74-6a4a-470a-8347-f2c6a101b803", new_uuid("4689ff74-6a4a-470a-8347-f2c6a101b803"), "col2statusposts"))

STEPS = {
    2: (step_2, "Pause LifecycleRetryQueuedEvents"),
    3: (step_3, "Clear every queued community event"),
    4: (step_4, "Export the synced resources of Activities and generate its sync reports"),
    5: (step_5, "Export the synced resources of Blog and generate its sync reports"),
    6: (step_6, "Export the synced resources of IdeationBlog and generate its sync reports"),
    7: (step_7, "Export the synced resources of Files and generate its sync reports"),
    8: (step_8, "Export the synced resources of Forum and generate its sync reports"),
    9: (step_9, "Export the synced resources of Wiki and generate its sync reports"),
    10: (step_10, "Export the synced resources of StatusUpdates and generate its sync reports"),
    11: (step_11, "Resume LifecycleRetryQueuedEvents"),
    15: (step_15, "Resync Activities for 2 communities"),
    16: (step_16, "Assign 1 orphaned Files container where it belongs"),
    17: (step_17, "Assign 1 orphaned Forum container where it belongs"),
    18: (step_18, "Assign 1 orphaned StatusUpdates container where it belongs"),
}

def main(args):
    if not args:
        for n in sorted(STEPS.keys()):
            print("%d  %s" % (n, STEPS[n][1]))
        return
    for a in args:
        n = int(a)
        if n not in STEPS:
            raise Exception("step %d has no Communities commands in this plan" % n)
        print("step %d: %s" % (n, STEPS[n][1]))
        STEPS[n][0]()

main(sys.argv)
