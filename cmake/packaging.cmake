# `make install` (cmake --install), `make deb` (packaging/make-deb) and their
# tests. Installed: bin/triggers, the man page triggers(1), the systemd unit
# and sysusers.d entry, the example config (in share/doc, and in etc unless a
# config is already there) and the docs.
include(GNUInstallDirs)

# The man page: generated from the binary's --help (packaging/gen-man.py),
# so that it lists exactly the flags the binary has; the committed
# packaging/triggers.1 when the binary cannot run here (no python3, or a
# cross build). `make man` refreshes the committed copy.
set(TRIGGERS_MAN_SOURCE ${CMAKE_SOURCE_DIR}/packaging/triggers.1)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND NOT CMAKE_CROSSCOMPILING)
  add_custom_command(
    OUTPUT ${CMAKE_BINARY_DIR}/triggers.1
    COMMAND Python3::Interpreter ${CMAKE_SOURCE_DIR}/packaging/gen-man.py $<TARGET_FILE:triggers>
            ${PROJECT_VERSION} ${CMAKE_SOURCE_DIR}/packaging/triggers.1.in ${CMAKE_BINARY_DIR}/triggers.1
    DEPENDS triggers ${CMAKE_SOURCE_DIR}/packaging/gen-man.py ${CMAKE_SOURCE_DIR}/packaging/triggers.1.in
    COMMENT "Generating the man page triggers.1 from --help"
    VERBATIM)
  add_custom_target(man_page ALL DEPENDS ${CMAKE_BINARY_DIR}/triggers.1)
  set(TRIGGERS_MAN_SOURCE ${CMAKE_BINARY_DIR}/triggers.1)
endif()

# Relative to the prefix, so that `cmake --install build --prefix DIR` puts
# everything under DIR.
set(TRIGGERS_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "where the systemd unit goes (relative: under the prefix)")
set(TRIGGERS_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING "where the sysusers.d entry goes (relative: under the prefix)")

install(TARGETS triggers RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${TRIGGERS_MAN_SOURCE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES packaging/triggers.sysusers DESTINATION ${TRIGGERS_SYSUSERS_DIR} RENAME triggers.conf)
install(FILES packaging/triggers.toml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES README.md docs/operations.md docs/api.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The unit (with the paths of the prefix installed to, which may differ from
# the configured one under --prefix) and the config in etc, never over an
# existing config: cmake/install_files.cmake, run at install time.
install(CODE "
  set(TRIGGERS_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
  set(TRIGGERS_STAGE_DIR \"${CMAKE_BINARY_DIR}/install-stage\")
  set(TRIGGERS_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(TRIGGERS_SYSCONFDIR \"${CMAKE_INSTALL_SYSCONFDIR}\")
  set(TRIGGERS_SYSTEMD_UNIT_DIR \"${TRIGGERS_SYSTEMD_UNIT_DIR}\")")
install(SCRIPT cmake/install_files.cmake)

add_custom_target(deb
  COMMAND /bin/bash ${CMAKE_SOURCE_DIR}/packaging/make-deb ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/deb
  DEPENDS triggers
  COMMENT "Building the Debian package in ${CMAKE_BINARY_DIR}/deb"
  VERBATIM USES_TERMINAL)
if(TARGET man_page)
  add_dependencies(deb man_page)
endif()

# Not on the ASan+UBSan build: these test the packaging, not memory safety,
# and a package of an instrumented binary is nothing anyone installs.
if(TRIGGERS_BUILD_TESTS AND NOT TRIGGERS_SANITIZE)
  # Installs into a temporary prefix and runs the server from there; builds
  # the .deb, checks its contents and runs its binary; verifies the unit.
  foreach(t install deb)
    add_test(NAME packaging_${t}
      COMMAND ${Python3_EXECUTABLE} -m unittest -v tests/packaging/test_${t}.py
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(packaging_${t} PROPERTIES
      ENVIRONMENT "TRIGGERS_BIN=$<TARGET_FILE:triggers>;TRIGGERS_BUILD_DIR=${CMAKE_BINARY_DIR}" TIMEOUT 300)
  endforeach()
endif()
