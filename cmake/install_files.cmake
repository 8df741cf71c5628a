# Run by `cmake --install` (cmake/packaging.cmake): installs the files whose
# content or fate depends on the prefix installed to.
#
# - The systemd unit, with ExecStart= and the --config path of this prefix.
# - The config: etc/triggers/triggers.toml under the prefix (/etc for the
#   prefix /usr, as GNUInstallDirs does), only when none is there, so an
#   operator's edits survive a reinstall.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(IS_ABSOLUTE "${TRIGGERS_SYSCONFDIR}")
  set(sysconfdir "${TRIGGERS_SYSCONFDIR}")
elseif(prefix STREQUAL "/usr")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${prefix}/${TRIGGERS_SYSCONFDIR}")
endif()
if(IS_ABSOLUTE "${TRIGGERS_BINDIR}")
  set(TRIGGERS_BINDIR_FULL "${TRIGGERS_BINDIR}")
else()
  set(TRIGGERS_BINDIR_FULL "${prefix}/${TRIGGERS_BINDIR}")
endif()
if(IS_ABSOLUTE "${TRIGGERS_SYSTEMD_UNIT_DIR}")
  set(unitdir "${TRIGGERS_SYSTEMD_UNIT_DIR}")
else()
  set(unitdir "${prefix}/${TRIGGERS_SYSTEMD_UNIT_DIR}")
endif()

# The template's @TRIGGERS_BINDIR@ and @TRIGGERS_CONFIG@.
set(TRIGGERS_BINDIR "${TRIGGERS_BINDIR_FULL}")
set(TRIGGERS_CONFIG "${sysconfdir}/triggers/triggers.toml")
configure_file("${TRIGGERS_SOURCE_DIR}/packaging/triggers.service.in"
  "${TRIGGERS_STAGE_DIR}/triggers.service" @ONLY)
# file(INSTALL) prepends $DESTDIR itself.
file(INSTALL "${TRIGGERS_STAGE_DIR}/triggers.service" DESTINATION "${unitdir}")

set(config "$ENV{DESTDIR}${sysconfdir}/triggers/triggers.toml")
if(EXISTS "${config}")
  message(STATUS "Kept: ${config} (already there; the example is in the docs directory)")
else()
  file(INSTALL "${TRIGGERS_SOURCE_DIR}/packaging/triggers.toml" DESTINATION "${sysconfdir}/triggers")
endif()
