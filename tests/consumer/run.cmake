# cmake -DSOURCE=... -DWORK=... -P run.cmake: install mae into WORK/prefix (headers and CMake
# package only: nothing is compiled), then configure, build and run tests/consumer against it.
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/mae -G ${GENERATOR} -DMAE_BUILD_TESTS=OFF -DMAE_BUILD_EXAMPLES=OFF
    -DMAE_BUILD_BENCHMARKS=OFF -DCMAKE_INSTALL_PREFIX=${WORK}/prefix)
run(${CMAKE_COMMAND} --install ${WORK}/mae)
run(${CMAKE_COMMAND} -S ${SOURCE}/tests/consumer -B ${WORK}/consumer -G ${GENERATOR} -DCMAKE_PREFIX_PATH=${WORK}/prefix
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK}/consumer)
run(${WORK}/consumer/consumer)
if(EXISTS ${WORK}/consumer/consumer_onednn)
  run(${WORK}/consumer/consumer_onednn)
endif()
