"""Pure builders for the update ISO's metadata (update.xml, groups.xml).

The build itself (rpmbuild, createrepo_c, xorriso) is driven by ``iso/build``; this package only
turns records into bytes so tests can check the formats without the tools.
"""
