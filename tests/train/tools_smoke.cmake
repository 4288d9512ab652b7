# cmake -DPRETRAIN=... -DVISUALIZE=... -DPROBE=... -DWORK=... -P tools_smoke.cmake
# The evaluation tools on a model the main program just wrote: a 2-iteration pretrain_tiny run on
# Fashion-MNIST, then visualize (a PNG appears) and linear_probe (an accuracy is printed). Without
# Debian's dataset-fashion-mnist it prints "MAE_TEST_SKIPPED", which CTest reports as skipped.
set(data /usr/share/datasets/fashion-mnist)
if(NOT EXISTS ${data})
  message("MAE_TEST_SKIPPED: no ${data}")
  return()
endif()
file(REMOVE_RECURSE ${WORK})
function(run out_var)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
run(out ${PRETRAIN} --max-steps 2 --epochs 1 --warmup-epochs 0 --batch 16 --recon-images 2 --threads 2 --out ${WORK})
run(out ${VISUALIZE} --model ${WORK}/model.safetensors --images 3 --out ${WORK}/vis.png)
if(NOT EXISTS ${WORK}/vis.png)
  message(FATAL_ERROR "visualize wrote no ${WORK}/vis.png")
endif()
run(out ${PROBE} --model ${WORK}/model.safetensors --train 300 --test 200 --out ${WORK}/features.safetensors)
if(NOT out MATCHES "test accuracy 0\\.[0-9]+" OR NOT EXISTS ${WORK}/features.safetensors)
  message(FATAL_ERROR "linear_probe printed no accuracy or wrote no features:\n${out}")
endif()
# bad input: a file that is not a model
file(WRITE ${WORK}/junk.safetensors "not a safetensors file")
execute_process(COMMAND ${VISUALIZE} --model ${WORK}/junk.safetensors --out ${WORK}/x.png RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "junk.safetensors")
  message(FATAL_ERROR "visualize on a junk file: exit ${rc}, message '${err}'")
endif()
message("${out}")
