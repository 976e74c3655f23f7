from assetbuild.cli import main

raise SystemExit(main())
