from benchmarks.calibration.run import main

raise SystemExit(main())
